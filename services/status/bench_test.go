package status_test

import (
	"context"
	"os"
	"sync/atomic"
	"testing"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/status/internal/store"
)

// benchBackends runs fn on SQLite, and on PostgreSQL when the test URLs are set.
func benchBackends(b *testing.B, fn func(b *testing.B, be testkit.Backend)) {
	b.Helper()
	b.Run("sqlite", func(b *testing.B) { fn(b, testkit.Embedded(b)) })
	if nats, db := os.Getenv(testkit.EnvNATS), os.Getenv(testkit.EnvDatabase); nats != "" && db != "" {
		b.Run("postgres", func(b *testing.B) { fn(b, testkit.External(b, nats, db)) })
	}
}

// BenchmarkIngest1000 records one 1000-item accepted event per iteration
// (one transaction, so one fsync, each).
func BenchmarkIngest1000(b *testing.B) { benchIngest(b, 1000) }

// BenchmarkIngest8 records windows of eight one-message events, as the
// ingest consumer sees them at one message per request: there the statement,
// not the rows, is the cost.
func BenchmarkIngest8(b *testing.B) { benchIngest(b, 8) }

// BenchmarkIngest16x1000 records a consumer batch of sixteen 1000-item
// events per iteration, as the ingest consumer does under load.
func BenchmarkIngest16x1000(b *testing.B) { benchIngest(b, 16*1000) }

func benchIngest(b *testing.B, n int) {
	b.Helper()
	benchBackends(b, func(b *testing.B, be testkit.Backend) {
		db := be.DB(b, "status")
		ctx := context.Background()
		if err := store.Migrate(ctx, db); err != nil {
			b.Fatal(err)
		}
		st := store.New(db)
		rows := make([]store.Row, n)
		seq := uint64(0)
		b.ResetTimer()
		for b.Loop() {
			b.StopTimer()
			for i := range rows {
				item := i % 1000
				if n < 1000 { // one-message events
					item = 0
				}
				if item == 0 {
					seq++
				}
				rows[i] = store.Row{Pos: events.Position(seq, item), AccountID: int64(seq % 50)}
			}
			b.StartTimer()
			if err := st.Ingest(ctx, rows); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "rows/s")
	})
}

// BenchmarkApply200 applies one 200-report request per iteration through the
// RPC, each changing 200 new messages and publishing a ReportedBatch: the
// latency of one request.
func BenchmarkApply200(b *testing.B) { benchApply(b, 200, 1) }

// BenchmarkApply200Parallel is BenchmarkApply200 with 32 requests in flight (16 per core),
// as many phones reporting at once: the throughput.
func BenchmarkApply200Parallel(b *testing.B) { benchApply(b, 200, 16) }

// BenchmarkApply20Parallel is the phone fleet's report: 20 messages a
// request, 32 requests in flight, so the fixed cost per request shows.
func BenchmarkApply20Parallel(b *testing.B) { benchApply(b, 20, 16) }

func benchApply(b *testing.B, size, parallelism int) {
	b.Helper()
	benchBackends(b, func(b *testing.B, be testkit.Backend) {
		h := start(b, be)
		const account = 1
		ctx := context.Background()
		var requests [][]events.ApplyReport
		seq := uint64(1 << 20) // clear of the stream's own sequences
		for range b.N {
			seq++
			rows := make([]store.Row, size)
			reports := make([]events.ApplyReport, size)
			for i := range rows {
				rows[i] = store.Row{Pos: events.Position(seq, i), AccountID: account}
				reports[i] = events.ApplyReport{Index: i, Pos: rows[i].Pos, Status: 2 + i%2}
			}
			if err := h.store.Ingest(ctx, rows); err != nil {
				b.Fatal(err)
			}
			requests = append(requests, reports)
		}
		var next atomic.Int64
		b.SetParallelism(parallelism) // goroutines per GOMAXPROCS
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				reports := requests[next.Add(1)-1]
				rep, err := h.apply(events.ApplyRequest{AccountID: account, Device: "bench", Reports: reports})
				if err != nil || rep.Updated != size {
					b.Errorf("updated %d, errors %v, err %v", rep.Updated, rep.Errors, err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "reports/s")
	})
}
