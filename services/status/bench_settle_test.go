package status_test

import (
	"context"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/status/internal/store"
)

// BenchmarkSettleFleet is the store's part of a group commit of the phone
// fleet's reports: per iteration one transaction of 32 requests, each
// settling 20 messages (19 sent, 1 failed) and adding its outbox row. Of
// the whole apply path only the SQL: compare cpu-ns/report.
func BenchmarkSettleFleet(b *testing.B) {
	benchBackends(b, func(b *testing.B, be testkit.Backend) {
		const requests, size = 32, 20
		ctx := context.Background()
		st := migratedStore(b, be)
		total := b.N * requests * size
		rows := make([]store.Row, 0, 8000)
		for i := range total {
			rows = append(rows, store.Row{Pos: int64(i + 1), AccountID: 1})
			if len(rows) == cap(rows) || i == total-1 {
				if err := st.Ingest(ctx, rows); err != nil {
					b.Fatal(err)
				}
				rows = rows[:0]
			}
		}
		payload := make([]byte, 3*size)
		sent, failed := make([]int64, size-1), make([]int64, 1)
		next := int64(1)
		cpu0 := testkit.ProcessCPU()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			err := st.InTx(ctx, func(ctx context.Context, q *store.Queries) error {
				for range requests {
					failed[0] = next
					for j := range sent {
						sent[j] = next + 1 + int64(j)
					}
					next += size
					done, err := settleFleet(ctx, q, sent, failed)
					if err != nil {
						return err
					}
					if done != size {
						b.Errorf("settled %d of %d", done, size)
					}
					if _, err := q.AddOutbox(ctx, payload, time.Now()); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(testkit.ProcessCPU()-cpu0)/float64(b.N*requests*size), "cpu-ns/report")
	})
}

// settleFleet marks sent and failed final as a request does.
func settleFleet(ctx context.Context, q *store.Queries, sent, failed []int64) (int, error) {
	done, err := q.MarkFinal(ctx, 1, sent, failed, "bench", time.Now())
	return len(done), err
}
