package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/libs/token"
	"github.com/apitosms/apitosms/services/billing/internal/domain"
)

// TestReserveBatchInOrder: one batch gives each reservation what applying
// them one by one in order would give, whatever the mix of accounts.
func TestReserveBatchInOrder(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx, st, now := context.Background(), migrated(t, b), time.Now()
		mk := func(limit int64, sub bool) int64 {
			acc, err := st.CreateAccount(ctx, "n", "a@b", digestFor(t), now)
			if err != nil {
				t.Fatal(err)
			}
			if sub {
				if _, err := st.PutSubscription(ctx, acc.ID, domain.Subscription{Plan: "p", MonthlyLimit: limit, StartedAt: now}); err != nil {
					t.Fatal(err)
				}
			}
			return acc.ID
		}
		a, c, none := mk(12, true), mk(3, true), mk(0, false)
		res := func(id int64, n int) domain.Reservation { return domain.Reservation{AccountID: id, Count: n} }
		batch := []domain.Reservation{res(c, 2), res(a, 5), res(a, 10), res(none, 4), res(c, 2), res(a, 1), res(a+c+none, 1), res(c, 5)}
		grants, err := st.ReserveBatch(ctx, now, batch)
		if err != nil {
			t.Fatal(err)
		}
		// One by one, on fresh accounts with the same quotas.
		a2, c2, none2 := mk(12, true), mk(3, true), mk(0, false)
		rename := map[int64]int64{a: a2, c: c2, none: none2, a + c + none: a2 + c2 + none2 + 1000}
		for i, r := range batch {
			one, err := st.ReserveBatch(ctx, now, []domain.Reservation{res(rename[r.AccountID], r.Count)})
			if err != nil {
				t.Fatal(err)
			}
			if one[0] != grants[i] {
				t.Fatalf("reservation %d: batched %+v, alone %+v", i, grants[i], one[0])
			}
		}
		wantGranted := []int{2, 5, 7, 0, 1, 0, 0, 0}
		for i, g := range grants {
			if g.Granted != wantGranted[i] {
				t.Fatalf("reservation %d granted %d, want %d (%+v)", i, g.Granted, wantGranted[i], grants)
			}
		}
		if !errors.Is(grants[6].Err, domain.ErrAccountNotFound) || grants[3].SubscriptionActive {
			t.Fatalf("unknown account or no subscription mishandled: %+v", grants)
		}
		v, err := st.Account(ctx, a, grants[0].Month)
		if err != nil || v.Used != 12 {
			t.Fatalf("stored usage of a = %d, %v; want 12", v.Used, err)
		}
	})
}

// TestReserveSubscriptionTimes: the reservation reads a subscription's
// expiry and end as stored (SQLite's prepared lookup scans them itself): an
// expiry in the future grants, one in the past or an ended subscription
// grants nothing and says the subscription is not active, and the limit and
// usage read back are the stored ones.
func TestReserveSubscriptionTimes(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx, st, now := context.Background(), migrated(t, b), time.Now()
		mk := func(expires time.Time, end bool) int64 {
			acc, err := st.CreateAccount(ctx, "n", "a@b", digestFor(t), now)
			if err != nil {
				t.Fatal(err)
			}
			sub := domain.Subscription{Plan: "p", MonthlyLimit: 7, StartedAt: now.Add(-2 * time.Hour), ExpiresAt: expires}
			if _, err := st.PutSubscription(ctx, acc.ID, sub); err != nil {
				t.Fatal(err)
			}
			if end {
				if _, err := st.EndSubscription(ctx, acc.ID, now.Add(-time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			return acc.ID
		}
		later, expired, ended := mk(now.Add(time.Hour), false), mk(now.Add(-time.Second), false), mk(time.Time{}, true)
		res := func(id int64) domain.Reservation { return domain.Reservation{AccountID: id, Count: 3} }
		for round, wantUsed := range []int64{3, 6} {
			grants, err := st.ReserveBatch(ctx, now, []domain.Reservation{res(later), res(expired), res(ended)})
			if err != nil {
				t.Fatal(err)
			}
			if g := grants[0]; g.Granted != 3 || !g.SubscriptionActive || g.Limit != 7 || g.Used != wantUsed || g.Err != nil {
				t.Fatalf("round %d, expiring later: %+v", round, g)
			}
			for i, g := range grants[1:] {
				if g.Granted != 0 || g.SubscriptionActive || g.Err != nil {
					t.Fatalf("round %d, inactive subscription %d: %+v", round, i, g)
				}
			}
		}
	})
}

// migrated returns a store on b's database, migrated.
func migrated(t *testing.T, b testkit.Backend) *Store {
	t.Helper()
	st := New(b.DB(t, Service))
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// digestFor returns a fresh, unique token digest.
func digestFor(t testing.TB) string {
	t.Helper()
	return token.Digest(token.New())
}
