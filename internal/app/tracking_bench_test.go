package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
)

// BenchmarkBulkLookup1000 is POST /api/{token}/messages/lookup with 1000
// hashes through the real HTTP server (all in one process on the embedded
// NATS server and SQLite), among 10,000 queued messages. Issue target: at
// least 20,000 lookups per second. Four clients ask at once (merchants'
// shops and dashboards), so the figure is throughput, not one client's
// round trips.
func BenchmarkBulkLookup1000(b *testing.B) {
	be := testkit.Embedded(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		done <- Run(ctx, Runtime{Getenv: be.Env(map[string]string{"APITOSMS_ADMIN_TOKEN": adminToken, "APITOSMS_LOG_LEVEL": "error"}),
			Stdout: io.Discard, Stderr: io.Discard, OnReady: func(addr string) { ready <- addr }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("run: %v", err)
		}
	}()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		b.Fatalf("start: %v", err)
	case <-time.After(60 * time.Second):
		b.Fatal("did not start")
	}
	r, err := send("POST", base+"/admin/v1/accounts", map[string]any{"name": "Bench", "email": "b@example.com"}, "Authorization", "Bearer "+adminToken)
	if err != nil || r.status != 201 {
		b.Fatalf("account: %v %d", err, r.status)
	}
	var acc struct {
		ID       int64  `json:"id"`
		APIToken string `json:"apiToken"`
	}
	if err := json.Unmarshal(r.body, &acc); err != nil {
		b.Fatal(err)
	}
	sub := map[string]any{"plan": "bench", "monthlyLimit": 1000000, "rateLimitPerMinute": 100000}
	if r, err := send("PUT", fmt.Sprintf("%s/admin/v1/accounts/%d/subscription", base, acc.ID), sub, "Authorization", "Bearer "+adminToken); err != nil || r.status != 200 {
		b.Fatalf("subscription: %v %d", err, r.status)
	}
	tok := acc.APIToken
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
