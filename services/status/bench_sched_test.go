package status_test

import (
	"context"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/status/internal/store"
)

// BenchmarkDueSettle settles 200 due messages per operation as a report
// request does (MarkFinal and an outbox row in one transaction). Between
// two due messages (pos order) sit rows of messages that stay new, as
// scheduled ones do until their sendAt: none, one (half the table) or
// twenty (a large backlog: about 1 M rows at -benchtime=250x). Compare
// ns/op against scheduled=0.
func BenchmarkDueSettle(b *testing.B) {
	for _, k := range []struct {
		name string
		per  int
	}{{"scheduled=0", 0}, {"scheduled=1x", 1}, {"scheduled=20x", 20}} {
		b.Run(k.name, func(b *testing.B) {
			benchBackends(b, func(b *testing.B, be testkit.Backend) { benchDueSettle(b, be, k.per) })
		})
	}
}

func benchDueSettle(b *testing.B, be testkit.Backend, per int) {
	b.Helper()
	const size = 200
	ctx := context.Background()
	db := be.DB(b, store.Service)
	if err := store.Migrate(ctx, db); err != nil {
		b.Fatal(err)
	}
	st := store.New(db)
	due := b.N * size
	batch := make([]store.Row, 0, 8000)
	for i := range due {
		pos := int64(i*(per+1) + 1)
		for j := range per + 1 {
			batch = append(batch, store.Row{Pos: pos + int64(j), AccountID: 1})
		}
		if len(batch) >= 8000 || i == due-1 {
			if err := st.Ingest(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	positions := make([]int64, size)
	cpu0 := testkit.ProcessCPU()
	payload := make([]byte, 8*size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for j := range positions {
			positions[j] = int64((i*size+j)*(per+1) + 1)
		}
		err := st.InTx(ctx, func(ctx context.Context, q *store.Queries) error {
			done, err := q.MarkFinal(ctx, 1, positions, 2, "bench", time.Now())
			if err != nil {
				return err
			}
			if len(done) != size {
				b.Errorf("settled %d of %d", len(done), size)
			}
			_, err = q.AddOutbox(ctx, payload, time.Now())
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/sms")
	b.ReportMetric(float64(testkit.ProcessCPU()-cpu0)/float64(b.N*size), "cpu-ns/sms")
}
