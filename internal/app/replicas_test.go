package app

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apitosms/apitosms/libs/testkit"
)

// Two ingress and two queue processes (plus billing and status) on one
// broker and one database: FIFO, no double hand-out, exact quota, the shared
// rate limit and token rotation hold across replicas.
func TestReplicasShareEverything(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		core := start(t, b, nil, "-target=billing,status")
		q1 := start(t, b, nil, "-target=queue")
		q2 := start(t, b, nil, "-target=queue")
		in := []*proc{start(t, b, nil, "-target=ingress"), start(t, b, nil, "-target=ingress")}
		_, _ = q1, q2

		// Shared rate limit: 40 requests alternating replicas, limit 30.
		_, tokRate := account(t, core.base, 1000, 30)
		var ok, limited int
		for i := 0; i < 40; i++ {
			r := do(t, "GET", in[i%2].base+"/api/"+tokRate+"/get_messages", nil)
			switch r.status {
			case 200:
				ok++
			case 429:
				limited++
			default:
				t.Fatalf("status %d %s", r.status, r.body)
			}
		}
		if ok != 30 || limited != 10 {
			t.Fatalf("rate limit across replicas: %d ok, %d limited; want 30/10", ok, limited)
		}

		// Exact quota: 20 concurrent batches of 100 against a limit of 1000.
		_, tokQuota := account(t, core.base, 1000, 100000)
		var queued atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Not the test's goroutine: t.Errorf and return, never Fatal.
				r, err := send("POST", in[i%2].base+"/api/"+tokQuota+"/queue", items(fmt.Sprintf("q%d", i), 100))
				if err != nil {
					t.Errorf("quota batch: %v", err)
					return
				}
				if r.status == 200 {
					var res struct{ Queued int64 }
					if err := json.Unmarshal(r.body, &res); err != nil {
						t.Errorf("quota batch: %v: %s", err, r.body)
						return
					}
					queued.Add(res.Queued)
				} else if r.status != 402 {
					t.Errorf("quota batch: %d %s", r.status, r.body)
				}
			}()
		}
		wg.Wait()
		if queued.Load() != 1000 {
			t.Fatalf("queued %d across replicas with a limit of 1000", queued.Load())
		}

		// FIFO and no double hand-out: 30 batches of 50 queued in order
		// through alternating replicas, drained by 4 phones through both.
		_, tok := account(t, core.base, 100000, 100000)
		const batches, per = 30, 50
		for k := 0; k < batches; k++ {
			r := do(t, "POST", in[k%2].base+"/api/"+tok+"/queue", items(fmt.Sprintf("m%03d", k), per))
			if r.status != 200 {
				t.Fatalf("queue: %d %s", r.status, r.body)
			}
		}
		var mu sync.Mutex
		seen := map[string]int{}
		for ph := 0; ph < 4; ph++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					// Not the test's goroutine: t.Errorf and return, never Fatal.
					r, err := send("GET", fmt.Sprintf("%s/api/%s/get_messages?limit=37", in[ph%2].base, tok), nil)
					var got []struct{ Hash, Text string }
					if err == nil && r.status == 200 {
						err = json.Unmarshal(r.body, &got)
					} else if err == nil {
						err = fmt.Errorf("%d %s", r.status, r.body)
					}
					if err != nil {
						t.Errorf("get_messages: %v", err)
						return
					}
					if len(got) == 0 {
						return
					}
					prev := -1
					for _, m := range got {
						ord, err := textOrder(m.Text)
						if err != nil {
							t.Error(err)
							return
						}
						if ord <= prev {
							t.Errorf("not FIFO within a hand-out: %v", got)
						}
						prev = ord
						mu.Lock()
						seen[m.Hash]++
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		if len(seen) != batches*per {
			t.Fatalf("handed out %d distinct messages, want %d", len(seen), batches*per)
		}
		for h, n := range seen {
			if n != 1 {
				t.Fatalf("message %s handed out %d times", h, n)
			}
		}

		// Read-your-writes across replicas: queue on one, pull on the other at once.
		for i := 0; i < 10; i++ {
			r := do(t, "POST", in[i%2].base+"/api/"+tok+"/queue", items(fmt.Sprintf("ryw%d", i), 1))
			hash := r.json(t)["items"].([]any)[0].(map[string]any)["hash"]
			got := do(t, "GET", in[(i+1)%2].base+"/api/"+tok+"/get_messages", nil).list(t)
			if len(got) != 1 || got[0]["hash"] != hash {
				t.Fatalf("read-your-writes: queued %v, got %v", hash, got)
			}
		}

		// Rotation is seen by both ingress replicas at once, also by one
		// that has just looked the token up (and keeps the answer).
		id, tokRot := account(t, core.base, 10, 100)
		for _, p := range in {
			if r := do(t, "GET", p.base+"/api/"+tokRot+"/get_messages", nil); r.status != 200 {
				t.Fatalf("fresh token on a replica: %d", r.status)
			}
		}
		admin(t, "POST", fmt.Sprintf("%s/admin/v1/accounts/%d/rotate-token", core.base, id), nil)
		for _, p := range in {
			if r := do(t, "GET", p.base+"/api/"+tokRot+"/get_messages", nil); r.status != 401 {
				t.Fatalf("rotated token on a replica: %d", r.status)
			}
		}
	})
}

// textOrder turns "m007-12" into a number increasing in queue order.
func textOrder(text string) (int, error) {
	k, i, ok := strings.Cut(strings.TrimPrefix(text, "m"), "-")
	a, err1 := strconv.Atoi(k)
	c, err2 := strconv.Atoi(i)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected text %q", text)
	}
	return a*1000 + c, nil
}
