package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
)

// startIngressOS runs `apitosms -target=ingress` as a real OS process on
// the backend's NATS server, listening on addr.
func startIngressOS(t *testing.T, b testkit.Backend, addr string) *exec.Cmd {
	t.Helper()
	return startTargetOS(t, b, "ingress", addr)
}

// startTargetOS runs `apitosms -target=<target>` as a real OS process on the
// backend's NATS server and database, listening on addr, with env added to
// the environment, and waits until it answers /readyz.
func startTargetOS(t *testing.T, b testkit.Backend, target, addr string, env ...string) *exec.Cmd {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-target="+target)
	cmd.Env = append(append(os.Environ(),
		"APITOSMS_HTTP_ADDR="+addr,
		"APITOSMS_DATA_DIR="+b.DataDir,
		"APITOSMS_NAMESPACE="+b.Namespace,
		"APITOSMS_NATS_URL="+b.NATSURL,
		"APITOSMS_DATABASE_URL="+b.DatabaseURL,
		"APITOSMS_LOG_LEVEL=warn",
	), env...)
	cmd.Stderr = logWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testkit.Eventually(t, 60*time.Second, target+" process ready", func() bool {
		r, err := send("GET", "http://"+addr+"/readyz", nil)
		return err == nil && r.status == 200
	})
	return cmd
}

// metric reads an unlabelled counter from a process's /metrics.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	r := do(t, "GET", base+"/metrics", nil)
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// An ingress SIGKILLed while phones pull, with claims committed whose
// answers never reached a phone, loses nothing: after the confirm timeout
// the queue hands those messages out again, and once the ingress is back
// every message reaches a phone that got an answer. Queue, billing and
// status run in this process; the ingress is a real process of its own.
func TestIngressKilledMidClaimLosesNothing(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		core := start(t, b, map[string]string{
			"APITOSMS_CLAIM_CONFIRM_TIMEOUT": "3s",
			"APITOSMS_CLAIM_SWEEP_INTERVAL":  "100ms",
			// One claim at a time: the phones' claims queue up at the queue
			// service, so a kill almost always leaves some committed after
			// their ingress is gone (the worst moment).
			"APITOSMS_QUEUE_RPC_CONCURRENCY": "1",
		}, "-target=billing,queue,status")
		addr := freeAddr(t)
		ingress := startIngressOS(t, b, addr)
		base := "http://" + addr
		_, tok := account(t, core.base, 1_000_000, 1_000_000)

		const total = 3000
		for k := 0; k < total/500; k++ {
			r := do(t, "POST", base+"/api/"+tok+"/queue", items("m"+strconv.Itoa(k), 500))
			if r.status != 200 {
				t.Fatalf("queue: %d %s", r.status, r.body)
			}
		}

		// Phones poll until every message arrived; answers lost with the
		// ingress (connection dropped, 5xx) hand them nothing.
		var mu sync.Mutex
		got := map[string]int{}
		received := 0
		progress := make(chan struct{}, 1)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		const phones = 8
		for range phones {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					r, err := send("GET", base+"/api/"+tok+"/get_messages?limit=20", nil)
					if err != nil || r.status != 200 {
						// Not synchronisation: a phone's poll interval (the
						// ingress is down); the test waits on progress.
						time.Sleep(20 * time.Millisecond)
						continue
					}
					var list []struct{ Hash string }
					if err := json.Unmarshal(r.body, &list); err != nil {
						t.Errorf("get_messages: %v: %s", err, r.body) // not Fatal: this is not the test's goroutine
						return
					}
					mu.Lock()
					for _, m := range list {
						got[m.Hash]++
					}
					received += len(list)
					mu.Unlock()
					select {
					case progress <- struct{}{}:
					default:
					}
					if len(list) == 0 {
						time.Sleep(20 * time.Millisecond) // not synchronisation: a phone's poll interval when nothing is due
					}
				}
			})
		}
		defer func() { close(stop); wg.Wait() }()
		distinct := func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(got)
		}

		// Kill the ingress mid-drain until a kill has caught claims in
		// flight (committed, never answered): the sweep then requeues them.
		kills := 0
		for kills < 5 {
			for distinct() < total*(kills+1)/5 {
				<-progress
			}
			if err := ingress.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = ingress.Wait()
			kills++
			ingress = startIngressOS(t, b, addr)
			// Claims the kill caught unanswered expire after the confirm
			// timeout (3 s); if there were none, kill again.
			// The core is another process: its metric is all there is to
			// watch.
			if testkit.Within(8*time.Second, 100*time.Millisecond, func() bool {
				return metric(t, core.base, "apitosms_queue_claims_expired_total") > 0
			}) {
				break
			}
		}

		testkit.Eventually(t, 90*time.Second, "every message handed to a phone", func() bool { return distinct() == total })
		requeued := metric(t, core.base, "apitosms_queue_requeued_messages_total")
		expired := metric(t, core.base, "apitosms_queue_claims_expired_total")
		if requeued == 0 {
			t.Fatalf("no kill caught a claim in flight (%d kills): nothing was requeued", kills)
		}
		mu.Lock()
		dups := 0
		for h, n := range got {
			if n > 1 {
				dups += n - 1
				t.Logf("message %s handed out %d times", h, n)
			}
		}
		mu.Unlock()
		// A message is handed out twice only if a phone got its answer and
		// the ingress died before its ack left: at most one answer per phone
		// per kill.
		if dups > phones*20*kills {
			t.Fatalf("%d duplicate hand-outs after %d kills, more than the answers in flight", dups, kills)
		}
		t.Logf("%d kills; %v claims expired, %v messages requeued; all %d messages received, %d duplicates",
			kills, expired, requeued, total, dups)
	})
}
