package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// BenchmarkBacklog1M is one refresh of the backlog gauges (store.Backlog)
// with 1,000,000 messages waiting over 4 accounts (both lanes) and 10,000
// initiated, as the sweeper's loop calls it.
func BenchmarkBacklog1M(b *testing.B) {
	eachBackend(b, func(b *testing.B, st *store.Store) {
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		const total, chunk = 1_000_000, 20_000
		for from := 0; from < total; from += chunk {
			batch := rows(0, int64(from+1), chunk)
			for i := range batch {
				batch[i].AccountID = int64(1 + i%4)
				batch[i].High = i%10 == 0
			}
			if _, err := in.Insert(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		for range 50 {
			if _, err := st.Claim(ctx, 1, 200, store.NoBound, time.Now(), store.Confirm{}); err != nil {
				b.Fatal(err)
			}
		}
		refresh := backlogRefresh(st)
		b.ResetTimer()
		for b.Loop() {
			if err := refresh(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// backlogRefresh is what one refresh of the gauges reads.
func backlogRefresh(st *store.Store) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		_, err := st.Backlog(ctx)
		return err
	}
}
