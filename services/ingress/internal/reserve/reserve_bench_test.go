package reserve

import (
	"context"
	"testing"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/testkit"
)

// BenchmarkReserve: 64 concurrent callers (as ingest-single's 64 merchants)
// reserving one message each from a responder on the embedded NATS server,
// one call per reservation (as before) against calls shared by the
// reservations waiting together. The process's CPU (user+sys, the embedded
// server included) is the figure to compare: `go test -bench Reserve
// -run '^$' -cpuprofile` or /usr/bin/time around one sub-benchmark.
func BenchmarkReserve(b *testing.B) {
	run := func(b *testing.B, shared bool) {
		b.Helper()
		bk := testkit.Embedded(b)
		q := &quotas{limit: 1 << 60, used: map[int64]int64{}}
		q.serve(b, bk, true)
		nc := bk.Broker(b).Conn
		r := New(nc, bk.Names)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); r.Run(ctx, 1) }()
		defer func() { cancel(); <-done }()
		b.SetParallelism(32) // 64 goroutines on 2 cores
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				var err error
				if shared {
					_, err = r.Reserve(context.Background(), 1, 1)
				} else {
					_, err = rpc.Call[events.ReserveRequest, events.ReserveReply](context.Background(), nc,
						bk.Names.BillingReserve(), events.ReserveRequest{AccountID: 1, Count: 1})
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("one-call-each", func(b *testing.B) { run(b, false) })
	b.Run("shared", func(b *testing.B) { run(b, true) })
}
