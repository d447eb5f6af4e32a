package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/testkit"
)

// requestBound is the longest a request may take while a NATS node dies:
// with a 1 s broker call timeout, a call in flight on the dead node fails
// after at most two attempts (idempotent) or one of 2 s, well below the
// 15 s request timeout.
const requestBound = 5 * time.Second

// recoveryBound is how soon after a node dies requests succeed again.
const recoveryBound = 15 * time.Second

// A server on a three-node NATS cluster, its streams and buckets replicated
// three times, keeps answering while nodes die one after the other (the
// JetStream meta leader, the accepted stream's leader, the node the process
// is connected to; each restarted before the next): never a 500, a failure
// is a 503 in the contract's shape with Retry-After, no request takes longer
// than requestBound, requests succeed again within recoveryBound, and every
// message acknowledged with 200 is handed out afterwards, once.
func TestBrokerFailover(t *testing.T) {
	c := testkit.StartCluster(t, 3)
	b := clusterBackend(t, c)
	t.Cleanup(func() { broker.SetCallTimeout(0) }) // the process-wide bound the run below sets
	p := start(t, b, map[string]string{"APITOSMS_STREAM_REPLICAS": "3", "APITOSMS_BROKER_TIMEOUT": "1s"})
	_, tok := account(t, p.base, 10_000_000, 1_000_000)
	_, idle := account(t, p.base, 1000, 1_000_000) // polled throughout; never has messages

	var (
		mu        sync.Mutex
		acked     []string
		ok, busy  atomic.Int64
		worst     atomic.Int64             // nanoseconds
		lastOKAt  atomic.Int64             // start (unix ns) of the latest queue request answered 200
		okSignal  = make(chan struct{}, 1) // a queue request was answered 200
		writersWG sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	// judge checks one answer; it returns whether it was a 200.
	judge := func(what string, r response, err error, took time.Duration) bool {
		if took > time.Duration(worst.Load()) {
			worst.Store(int64(took))
		}
		if err != nil {
			t.Errorf("%s: %v (the HTTP server never went away)", what, err)
			return false
		}
		if took > requestBound {
			t.Errorf("%s took %v (bound %v): %d %s", what, took, requestBound, r.status, r.body)
		}
		switch r.status {
		case 200:
			ok.Add(1)
			return true
		case 503:
			busy.Add(1)
			var body map[string]any
			if json.Unmarshal(r.body, &body) != nil || len(body) != 2 ||
				body["error"] != "Service temporarily unavailable" || body["code"] != "unavailable" {
				t.Errorf("%s: 503 body %s, want the contract's unavailable shape", what, r.body)
			}
			if r.header.Get("Retry-After") == "" {
				t.Errorf("%s: 503 without Retry-After", what)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("%s: 503 Content-Type %q", what, ct)
			}
		default:
			t.Errorf("%s: %d %s (only 200 or 503 are acceptable)", what, r.status, r.body)
		}
		return false
	}
	for w := range 3 {
		writersWG.Add(1)
		go func() {
			defer writersWG.Done()
			for k := 0; ctx.Err() == nil; k++ {
				began := time.Now()
				r, err := send("POST", p.base+"/api/"+tok+"/queue", items(fmt.Sprintf("w%d-%d", w, k), 5))
				if !judge("queue", r, err, time.Since(began)) {
					continue
				}
				var res struct {
					Items []struct{ Hash string } `json:"items"`
				}
				if err := json.Unmarshal(r.body, &res); err != nil || len(res.Items) != 5 {
					t.Errorf("queue: %s", r.body)
					continue
				}
				mu.Lock()
				for _, it := range res.Items {
					acked = append(acked, it.Hash)
				}
				mu.Unlock()
				for old := lastOKAt.Load(); old < began.UnixNano() && !lastOKAt.CompareAndSwap(old, began.UnixNano()); {
					old = lastOKAt.Load()
				}
				select {
				case okSignal <- struct{}{}:
				default: // a signal is already pending
				}
			}
		}()
	}
	writersWG.Add(1)
	go func() {
		defer writersWG.Done()
		for ctx.Err() == nil {
			began := time.Now()
			r, err := send("GET", p.base+"/api/"+idle+"/get_messages", nil)
			judge("get_messages", r, err, time.Since(began))
		}
	}()

	// recovered waits until a queue request started after since succeeded.
	recovered := func(since time.Time) time.Duration {
		deadline := time.NewTimer(time.Until(since.Add(recoveryBound)))
		defer deadline.Stop()
		for lastOKAt.Load() < since.UnixNano() {
			select {
			case <-okSignal: // check again
			case <-deadline.C:
				t.Fatalf("no queue request succeeded within %v", recoveryBound)
			}
		}
		return time.Since(since)
	}
	recovered(time.Now())
	victims := []struct {
		name string
		pick func() int
	}{
		{"meta leader", c.MetaLeader},
		{"accepted stream leader", func() int { return c.StreamLeader(b.Names.AcceptedStream()) }},
		{"node the process is connected to", func() int {
			for i, s := range c.Servers {
				if s != nil && s.NumClients() > 0 {
					return i
				}
			}
			return -1
		}},
	}
	for _, v := range victims {
		i := v.pick()
		if i < 0 {
			t.Fatalf("no %s", v.name)
		}
		killed := time.Now()
		c.Shutdown(i)
		took := recovered(killed)
		t.Logf("%s (n%d) shut down: requests succeed again after %v", v.name, i+1, took.Round(time.Millisecond))
		c.Restart(i)
		// As a rolling restart does, wait until the restarted node has
		// caught up before taking the next one down (with a replica still
		// behind, a stream that loses its leader cannot elect another for
		// seconds: the cluster's behaviour, not ours).
		recovered(time.Now())
		testkit.Eventually(t, 30*time.Second, "the cluster healthy again", c.Healthy)
	}
	stop()
	writersWG.Wait()
	t.Logf("%d answers 200, %d answers 503, slowest %v; %d messages acknowledged",
		ok.Load(), busy.Load(), time.Duration(worst.Load()).Round(time.Millisecond), len(acked))

	// Nothing acknowledged is lost or duplicated.
	seen := map[string]int{}
	for {
		// The cluster may still answer 503 while it settles: nothing to
		// wait on but the answer itself.
		var r response
		testkit.Eventually(t, 60*time.Second, "get_messages answering other than 503", func() bool {
			r = do(t, "GET", p.base+"/api/"+tok+"/get_messages?limit=500", nil)
			return r.status != 503
		})
		if r.status != 200 {
			t.Fatalf("drain: %d %s", r.status, r.body)
		}
		list := r.list(t)
		if len(list) == 0 {
			break
		}
		for _, m := range list {
			seen[m["hash"].(string)]++
		}
	}
	var missing []string
	for _, h := range acked {
		if seen[h] != 1 {
			missing = append(missing, fmt.Sprintf("%s×%d", h, seen[h]))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged messages not handed out exactly once: %s", len(missing), len(acked),
			strings.Join(missing[:min(len(missing), 10)], " "))
	}
}
