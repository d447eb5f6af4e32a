package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// 32 concurrent claimers on one account drain 5000 messages: every message
// is handed out exactly once, each batch oldest first and within its limit,
// and on SQLite claims shared transactions.
func TestClaimGroupConcurrent(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		const total, claimers = 5000, 32
		in := st.NewInserter()
		defer in.Close()
		if _, err := in.Insert(ctx, rows(1, 1, total)); err != nil {
			t.Fatal(err)
		}
		// Another account's messages are never handed out to account 1.
		if _, err := in.Insert(ctx, rows(2, total+1, 100)); err != nil {
			t.Fatal(err)
		}
		size := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "group_size", Help: "Claims per group.", Buckets: []float64{1}})
		g := st.NewClaimGroup(size)
		defer g.Close()

		got := make([][][]store.Claimed, claimers)
		var wg sync.WaitGroup
		for c := range claimers {
			wg.Go(func() {
				limit := 1 + c*3
				for {
					batch, err := g.Claim(ctx, 1, limit, store.NoBound, time.Now(), store.Confirm{})
					if err != nil {
						t.Errorf("claimer %d: %v", c, err)
						return
					}
					if len(batch) == 0 {
						return
					}
					if len(batch) > limit {
						t.Errorf("claimer %d got %d messages, limit %d", c, len(batch), limit)
					}
					got[c] = append(got[c], batch)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		seen := make(map[int64]int, total)
		for c, batches := range got {
			for _, batch := range batches {
				for i, m := range batch {
					seen[m.Pos]++
					if m.Pos < 1 || m.Pos > total {
						t.Fatalf("claimer %d got position %d of another account", c, m.Pos)
					}
					if i > 0 && batch[i-1].Pos >= m.Pos {
						t.Fatalf("claimer %d got a batch out of order: %d before %d", c, batch[i-1].Pos, m.Pos)
					}
				}
			}
		}
		if len(seen) != total {
			t.Fatalf("%d distinct messages handed out, want %d", len(seen), total)
		}
		for pos, n := range seen {
			if n != 1 {
				t.Fatalf("message %d handed out %d times", pos, n)
			}
		}
		if b.DatabaseURL != "" {
			return // PostgreSQL claims run directly
		}
		var m dto.Metric
		if err := size.Write(&m); err != nil {
			t.Fatal(err)
		}
		h := m.GetHistogram()
		single := h.GetBucket()[0].GetCumulativeCount() // groups of one claim
		if h.GetSampleCount() == single {
			t.Fatalf("all %d transactions held one claim; want some groups of several", single)
		}
		t.Logf("%d transactions for %.0f claims", h.GetSampleCount(), h.GetSampleSum())
	})
}
