package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apitosms/apitosms/internal/testbin"
	"github.com/apitosms/apitosms/libs/testkit"
)

var binary = testbin.Apitosms

// osProc is apitosms running as a real OS process.
type osProc struct {
	cmd  *exec.Cmd
	base string
}

func startOS(t *testing.T, b testkit.Backend, addr string) *osProc {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	env := append(os.Environ(),
		"APITOSMS_HTTP_ADDR="+addr,
		"APITOSMS_DATA_DIR="+b.DataDir,
		"APITOSMS_NAMESPACE="+b.Namespace,
		"APITOSMS_ADMIN_TOKEN="+adminToken,
		"APITOSMS_LOG_LEVEL=warn",
	)
	if b.External {
		env = append(env, "APITOSMS_NATS_URL="+b.NATSURL, "APITOSMS_DATABASE_URL="+b.DatabaseURL)
	} else {
		env = append(env, "APITOSMS_NATS_URL=", "APITOSMS_DATABASE_URL=")
	}
	cmd.Env = env
	cmd.Stderr = logWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &osProc{cmd: cmd, base: "http://" + addr}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testkit.Eventually(t, 60*time.Second, "server up", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Everything answered 200 survives SIGKILL of the process (and of its
// embedded broker): after a restart it is all there, once, in order. SIGTERM
// then drains and exits 0.
func TestAcceptedSurvivesSIGKILL(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		addr := freeAddr(t)
		p := startOS(t, b, addr)
		_, tok := account(t, p.base, 10_000_000, 1_000_000)

		type acked struct{ hashes []string }
		const writers = 4
		results := make([]acked, writers)
		ctx, cancel := context.WithCancel(context.Background())
		// The kill comes once the writers have had killBatches batches
		// acknowledged between them (while they keep writing).
		const killBatches = 40
		var batches atomic.Int64
		enough := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; ctx.Err() == nil; k++ {
					r, err := send("POST", p.base+"/api/"+tok+"/queue", items(fmt.Sprintf("w%d-%d", w, k), 100))
					if err != nil {
						return // the server died mid-request: not acknowledged
					}
					if r.status != 200 {
						t.Errorf("queue: %d %s", r.status, r.body)
						return
					}
					var res struct {
						Items []struct{ Hash string } `json:"items"`
					}
					if err := json.Unmarshal(r.body, &res); err != nil {
						t.Errorf("queue: %v: %s", err, r.body)
						return
					}
					for _, it := range res.Items {
						results[w].hashes = append(results[w].hashes, it.Hash)
					}
					if batches.Add(1) == killBatches {
						close(enough)
					}
				}
			}()
		}
		select {
		case <-enough:
		case <-time.After(time.Minute):
			t.Errorf("%d batches acknowledged in a minute, want %d before the kill", batches.Load(), killBatches)
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = p.cmd.Wait()
		cancel()
		wg.Wait()
		total := 0
		for _, r := range results {
			total += len(r.hashes)
		}
		if total == 0 {
			t.Fatal("nothing was acknowledged before the kill")
		}

		p = startOS(t, b, addr)
		// A batch the killed process held is redelivered only after the
		// consumer's ack wait; until then reads cannot be complete, and
		// /readyz says so. Once it says ready, every read answers at once.
		restarted := time.Now()
		testkit.Eventually(t, time.Minute, "readyz after restart", func() bool {
			return do(t, "GET", p.base+"/readyz", nil).status == 200
		})
		t.Logf("ready %v after the restart", time.Since(restarted).Round(time.Millisecond))
		pos := map[string]int{}
		n := 0
		for {
			got := do(t, "GET", p.base+"/api/"+tok+"/get_messages?limit=200", nil)
			if got.status != 200 {
				t.Fatalf("get_messages after restart, once ready: %d %s", got.status, got.body)
			}
			list := got.list(t)
			if len(list) == 0 {
				break
			}
			for _, m := range list {
				h := m["hash"].(string)
				if _, dup := pos[h]; dup {
					t.Fatalf("message %s handed out twice", h)
				}
				pos[h] = n
				n++
			}
		}
		for w, r := range results {
			prev := -1
			for _, h := range r.hashes {
				at, ok := pos[h]
				if !ok {
					t.Fatalf("writer %d: acknowledged message %s lost (%d acknowledged in all)", w, h, total)
				}
				if at < prev {
					t.Fatalf("writer %d: acknowledged messages out of order", w)
				}
				prev = at
			}
		}
		t.Logf("%d acknowledged before SIGKILL, all present once and in order (%d handed out)", total, n)

		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("SIGTERM: exit %v, want 0", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("SIGTERM: did not exit")
		}
	})
}
