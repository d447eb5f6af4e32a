package store

import (
	"context"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/billing/internal/domain"
)

// TestReserveWritesEveryAccount: a batch changing several accounts (one
// statement for all of them on SQLite) stores each one's usage and due
// quota events as batches of one account each do, on new usage rows and on
// rows already there.
func TestReserveWritesEveryAccount(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx, st, now := context.Background(), migrated(t, b), time.Now()
		mk := func() int64 {
			acc, err := st.CreateAccount(ctx, "n", "a@b", digestFor(t), now)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.PutSubscription(ctx, acc.ID, domain.Subscription{Plan: "p", MonthlyLimit: 10, StartedAt: now}); err != nil {
				t.Fatal(err)
			}
			return acc.ID
		}
		batches := [][][2]int{ // (account index, count)
			{{0, 9}, {1, 2}, {2, 10}, {3, 1}},
			{{0, 1}, {1, 1}},
			{{1, 8}, {3, 3}, {2, 1}},
		}
		together, alone := []int64{mk(), mk(), mk(), mk()}, []int64{mk(), mk(), mk(), mk()}
		for _, batch := range batches {
			var rs []domain.Reservation
			for _, r := range batch {
				rs = append(rs, domain.Reservation{AccountID: together[r[0]], Count: r[1]})
				if _, err := st.ReserveBatch(ctx, now, []domain.Reservation{{AccountID: alone[r[0]], Count: r[1]}}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := st.ReserveBatch(ctx, now, rs); err != nil {
				t.Fatal(err)
			}
		}
		due, err := st.DueQuotaEvents(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		events := map[int64]int{}
		for _, ev := range due {
			events[ev.AccountID] |= ev.Event
		}
		month := due[0].Month
		for i := range together {
			a, err := st.Account(ctx, together[i], month)
			if err != nil {
				t.Fatal(err)
			}
			b, err := st.Account(ctx, alone[i], month)
			if err != nil {
				t.Fatal(err)
			}
			if a.Used != b.Used || events[together[i]] != events[alone[i]] {
				t.Fatalf("account %d: used %d, events %b; one account a batch: used %d, events %b",
					i, a.Used, events[together[i]], b.Used, events[alone[i]])
			}
		}
		if len(events) != 6 { // all but account 3's twin pair cross a threshold
			t.Fatalf("events %v", events)
		}
	})
}
