package app

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apitosms/apitosms/libs/testkit"
)

// BenchmarkBulkLookup1000 is POST /api/{token}/messages/lookup with 1000
// hashes through the real HTTP server (all in one process on the embedded
// NATS server and SQLite), among 10,000 queued messages. Issue target: at
// least 20,000 lookups per second. Four clients ask at once (merchants'
// shops and dashboards), so the figure is throughput, not one client's
// round trips.
func BenchmarkBulkLookup1000(b *testing.B) {
	p := start(b, testkit.Embedded(b), map[string]string{"APITOSMS_LOG_LEVEL": "error"})
	base := p.base
	_, tok := account(b, base, 1000000, 100000)
	var hashes []string
	for k := range 10 {
		r, err := send("POST", base+"/api/"+tok+"/queue", items(fmt.Sprintf("b%d", k), 1000))
		if err != nil || r.status != 200 {
			b.Fatalf("queue: %v %d", err, r.status)
		}
		var body struct {
			Items []struct{ Hash string } `json:"items"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			b.Fatal(err)
		}
		for _, it := range body.Items {
			hashes = append(hashes, it.Hash)
		}
	}
	bodies := make([][]byte, 10)
	for k := range bodies {
		bodies[k], _ = json.Marshal(map[string]any{"hashes": hashes[k*1000 : (k+1)*1000]})
	}
	const clients = 4
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for range clients {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				r, err := send("POST", base+"/api/"+tok+"/messages/lookup", bodies[i%10])
				if err != nil || r.status != 200 {
					b.Errorf("lookup: %v %d %s", err, r.status, r.body)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "lookups/s")
}
