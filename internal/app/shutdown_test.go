package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
)

// shutdownLimit is what the whole SIGTERM drain may take with the default
// budget (APITOSMS_SHUTDOWN_TIMEOUT=20s), under Kubernetes' 30 s grace.
const shutdownLimit = 25 * time.Second

// SIGTERM in the middle of load, with a request that never finishes
// arriving (a client that sent headers and stalls on its body), exits 0
// within 25 s: the budget is one deadline for HTTP, services and the final
// close, not one per stage.
func TestSIGTERMUnderLoadExitsInTime(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		addr := freeAddr(t)
		p := startOS(t, b, addr)
		_, tok := account(t, p.base, 100_000_000, 1_000_000)

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var wg sync.WaitGroup
		var accepted, pulled atomic.Int64
		for w := 0; w < 4; w++ {
			wg.Add(2)
			go func() { // merchant
				defer wg.Done()
				for k := 0; ctx.Err() == nil; k++ {
					r, err := send("POST", p.base+"/api/"+tok+"/queue", items(fmt.Sprintf("w%d-%d", w, k), 50))
					if err == nil && r.status == 200 {
						accepted.Add(50)
					}
				}
			}()
			go func() { // phone
				defer wg.Done()
				for ctx.Err() == nil {
					r, err := send("GET", p.base+"/api/"+tok+"/get_messages?limit=50", nil)
					if err == nil && r.status == 200 {
						var list []json.RawMessage
						if err := json.Unmarshal(r.body, &list); err != nil {
							t.Errorf("get_messages: %v: %s", err, r.body) // not Fatal: not the test's goroutine
							return
						}
						pulled.Add(int64(len(list)))
					}
				}
			}()
		}
		// A request in flight that never completes.
		stall, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer stall.Close()
		fmt.Fprintf(stall, "POST /api/%s/queue HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[{", tok)

		testkit.Eventually(t, 30*time.Second, "load flowing", func() bool { return accepted.Load() > 0 && pulled.Load() > 0 })
		sent := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			took := time.Since(sent)
			if err != nil {
				t.Fatalf("SIGTERM under load: exit %v after %s, want 0", err, took)
			}
			t.Logf("SIGTERM under load (%d accepted, %d pulled): exited 0 in %s", accepted.Load(), pulled.Load(), took.Round(time.Millisecond))
		case <-time.After(shutdownLimit):
			t.Fatalf("SIGTERM under load: still running after %s", shutdownLimit)
		}
		cancel()
		wg.Wait()
	})
}

func TestShutdownBudgetSharesOneDeadline(t *testing.T) {
	s := shutdownBudget(20 * time.Second)
	if s.total != 20*time.Second || s.http+s.close >= s.total || s.http <= 0 || s.close <= 0 {
		t.Fatalf("shutdownBudget(20s) = %+v", s)
	}
}
