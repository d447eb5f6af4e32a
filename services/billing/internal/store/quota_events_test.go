package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/billing/internal/domain"
)

// Concurrent reservations (separate transactions, as on replicas) fire
// quota.warning and quota.exhausted once each per account and month; the
// events stay due until marked published; a release does not re-arm them.
func TestQuotaEventsFireOnce(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		db := b.DB(t, Service)
		st := New(db)
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		other := New(db) // a second replica on the same database
		now := time.Now()
		acc, err := st.CreateAccount(ctx, "n", "a@b", digestFor(t), now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.PutSubscription(ctx, acc.ID, domain.Subscription{Plan: "p", MonthlyLimit: 10, StartedAt: now}); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		crossed := map[int]int{}
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := st
				if i%2 == 1 {
					s = other
				}
				g, err := s.ReserveBatch(ctx, now, []domain.Reservation{{AccountID: acc.ID, Count: 1}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				crossed[g[0].Crossed]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if crossed[domain.QuotaWarning] != 1 || crossed[domain.QuotaExhausted] != 1 || crossed[domain.QuotaWarning|domain.QuotaExhausted] != 0 {
			t.Fatalf("crossings %v, want one warning and one exhausted", crossed)
		}
		due, err := st.DueQuotaEvents(ctx, 10)
		if err != nil || len(due) != 2 {
			t.Fatalf("due %+v, %v", due, err)
		}
		for _, ev := range due {
			if ev.Used != 10 || ev.Limit != 10 || ev.Month != now.UTC().Format("2006-01") {
				t.Fatalf("due event %+v", ev)
			}
		}
		if err := st.PublishedQuotaEvents(ctx, due[:1]); err != nil {
			t.Fatal(err)
		}
		if left, err := st.DueQuotaEvents(ctx, 10); err != nil || len(left) != 1 || left[0].Event != due[1].Event {
			t.Fatalf("after one published: %+v, %v", left, err)
		}
		if err := st.Release(ctx, acc.ID, due[0].Month, 5); err != nil {
			t.Fatal(err)
		}
		g, err := st.ReserveBatch(ctx, now, []domain.Reservation{{AccountID: acc.ID, Count: 5}})
		if err != nil || g[0].Granted != 5 || g[0].Crossed != 0 {
			t.Fatalf("after a release: %+v, %v", g, err)
		}
	})
}
