package billing_test

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/libs/timestamp"
	"github.com/apitosms/apitosms/libs/token"
)

func auth(t *testing.T, r *replica, n events.Names, digest string) (events.AuthReply, error) {
	t.Helper()
	return call[events.AuthRequest, events.AuthReply](t, r.nc, n.BillingAuth(), events.AuthRequest{TokenDigest: digest})
}

func reserve(t *testing.T, r *replica, n events.Names, id int64, count int) (events.ReserveReply, error) {
	t.Helper()
	return call[events.ReserveRequest, events.ReserveReply](t, r.nc, n.BillingReserve(),
		events.ReserveRequest{AccountID: id, Count: count})
}

func mustReserve(t *testing.T, r *replica, n events.Names, id int64, count int) events.ReserveReply {
	t.Helper()
	rep, err := reserve(t, r, n, id, count)
	if err != nil {
		t.Fatalf("reserve %d: %v", count, err)
	}
	return rep
}

func TestAuth(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		r := startReplica(t, b)
		n := b.Names
		a := r.createAccount(t)
		other := r.createAccount(t)

		got, err := auth(t, r, n, token.Digest(a.Token))
		if err != nil {
			t.Fatalf("auth: %v", err)
		}
		want := events.AuthReply{AccountID: a.ID, RateLimitPerMinute: 60}
		if got != want {
			t.Fatalf("auth without subscription = %+v, want %+v", got, want)
		}
		if got, _ := auth(t, r, n, token.Digest(other.Token)); got.AccountID != other.ID {
			t.Fatalf("other token authenticated as %d, want %d", got.AccountID, other.ID)
		}

		r.subscribe(t, a, map[string]any{"plan": "pro", "monthlyLimit": 500, "rateLimitPerMinute": 30})
		mustReserve(t, r, n, a.ID, 7)
		got, _ = auth(t, r, n, token.Digest(a.Token))
		want = events.AuthReply{AccountID: a.ID, RateLimitPerMinute: 30, SubscriptionActive: true, MonthlyLimit: 500, Used: 7}
		if got != want {
			t.Fatalf("auth with subscription = %+v, want %+v", got, want)
		}

		for name, digest := range map[string]string{
			"unknown":   token.Digest(token.New()),
			"raw token": a.Token[:63] + "g",
			"malformed": "not-a-digest",
			"empty":     "",
		} {
			_, err := auth(t, r, n, digest)
			if name == "raw token" && err == nil {
				t.Fatalf("a token that is not a digest authenticated")
			}
			wantCode(t, err, "invalid_token")
		}

		out := r.admin(t, "POST", a.path+"/rotate-token", nil, 200)
		fresh := out["apiToken"].(string)
		if _, err := auth(t, r, n, token.Digest(a.Token)); err == nil {
			t.Fatal("old token still works after rotation")
		} else {
			wantCode(t, err, "invalid_token")
		}
		if got, err := auth(t, r, n, token.Digest(fresh)); err != nil || got.AccountID != a.ID {
			t.Fatalf("new token: %+v, %v", got, err)
		}

		// An expired subscription is not active and grants nothing.
		past := timestamp.Format(time.Now().Add(-time.Hour))
		sub := r.subscribe(t, a, map[string]any{"plan": "old", "monthlyLimit": 500, "expiresAt": past})
		if sub["active"] != false || sub["expiresAt"] != past {
			t.Fatalf("expired subscription shown as %v", sub)
		}
		got, _ = auth(t, r, n, token.Digest(fresh))
		if got.SubscriptionActive || got.MonthlyLimit != 0 || got.RateLimitPerMinute != 60 {
			t.Fatalf("auth with expired subscription = %+v", got)
		}
		if rep := mustReserve(t, r, n, a.ID, 1); rep.Granted != 0 || rep.SubscriptionActive {
			t.Fatalf("reserve with expired subscription = %+v", rep)
		}
	})
}

func TestReserveSequence(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		r := startReplica(t, b)
		n := b.Names
		a := r.createAccount(t)
		month := timestamp.Month(time.Now())

		if rep := mustReserve(t, r, n, a.ID, 5); rep != (events.ReserveReply{Month: month}) {
			t.Fatalf("reserve without subscription = %+v", rep)
		}
		r.subscribe(t, a, map[string]any{"plan": "small", "monthlyLimit": 10})
		steps := []struct {
			count, granted int
			used           int64
		}{
			{7, 7, 7},  // all granted
			{5, 3, 10}, // partial: only 3 remain
			{1, 0, 10}, // exhausted
			{0, 0, 10}, // asking for nothing
		}
		for i, s := range steps {
			rep := mustReserve(t, r, n, a.ID, s.count)
			want := events.ReserveReply{Granted: s.granted, Used: s.used, Limit: 10, Month: month, SubscriptionActive: true}
			if rep != want {
				t.Fatalf("step %d: reserve %d = %+v, want %+v", i, s.count, rep, want)
			}
		}

		release := func(count int) {
			t.Helper()
			_, err := call[events.ReleaseRequest, events.ReleaseReply](t, r.nc, n.BillingRelease(),
				events.ReleaseRequest{AccountID: a.ID, Count: count, Month: month})
			if err != nil {
				t.Fatalf("release: %v", err)
			}
		}
		release(4)
		if rep := mustReserve(t, r, n, a.ID, 5); rep.Granted != 4 || rep.Used != 10 {
			t.Fatalf("after releasing 4, reserve 5 = %+v", rep)
		}
		release(1000) // never below zero
		if got, _ := auth(t, r, n, token.Digest(a.Token)); got.Used != 0 {
			t.Fatalf("used after releasing too much = %d, want 0", got.Used)
		}
		_, err := call[events.ReleaseRequest, events.ReleaseReply](t, r.nc, n.BillingRelease(),
			events.ReleaseRequest{AccountID: a.ID, Count: 1, Month: "last month"})
		wantCode(t, err, "bad_request")

		r.admin(t, "DELETE", a.path+"/subscription", nil, 200)
		if rep := mustReserve(t, r, n, a.ID, 1); rep.Granted != 0 || rep.SubscriptionActive || rep.Limit != 0 {
			t.Fatalf("reserve after subscription ended = %+v", rep)
		}

		_, err = reserve(t, r, n, a.ID+1000, 1)
		wantCode(t, err, "account_not_found")
		_, err = reserve(t, r, n, a.ID, -1)
		wantCode(t, err, "bad_request")

		if v := counterSum(t, r.reg, "apitosms_billing_reserved_messages_total"); v != 14 { // 7 + 3 + 4
			t.Fatalf("reserved messages metric = %v, want 14", v)
		}
	})
}

// TestReserveMany: one call's items are applied in order, each answered as
// Reserve would have answered it alone in that order (partial grants, two
// accounts interleaved, no subscription); an unknown account fails alone;
// a negative count fails the whole call and reserves nothing.
func TestReserveMany(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		r := startReplica(t, b)
		n := b.Names
		month := timestamp.Month(time.Now())
		a, c, none := r.createAccount(t), r.createAccount(t), r.createAccount(t)
		r.subscribe(t, a, map[string]any{"plan": "small", "monthlyLimit": 10})
		r.subscribe(t, c, map[string]any{"plan": "small", "monthlyLimit": 4})
		many := func(items ...events.ReserveRequest) (events.ReserveManyReply, error) {
			t.Helper()
			return call[events.ReserveManyRequest, events.ReserveManyReply](t, r.nc, n.BillingReserveMany(),
				events.ReserveManyRequest{Items: items})
		}
		rep, err := many(
			events.ReserveRequest{AccountID: a.ID, Count: 6},
			events.ReserveRequest{AccountID: c.ID, Count: 3},
			events.ReserveRequest{AccountID: a.ID + 1000, Count: 1},
			events.ReserveRequest{AccountID: a.ID, Count: 6},
			events.ReserveRequest{AccountID: none.ID, Count: 1},
			events.ReserveRequest{AccountID: c.ID, Count: 3},
			events.ReserveRequest{AccountID: a.ID, Count: 1},
		)
		if err != nil {
			t.Fatalf("reserve-many: %v", err)
		}
		ok := func(granted int, used, limit int64) events.ReserveOutcome {
			return events.ReserveOutcome{ReserveReply: events.ReserveReply{Granted: granted, Used: used, Limit: limit,
				Month: month, SubscriptionActive: limit > 0}}
		}
		want := []events.ReserveOutcome{
			ok(6, 6, 10), ok(3, 3, 4),
			{Err: &events.ItemError{Status: 404, Code: "account_not_found", Message: "Account not found"}},
			ok(4, 10, 10), ok(0, 0, 0), ok(1, 4, 4), ok(0, 10, 10),
		}
		if len(rep.Items) != len(want) {
			t.Fatalf("%d answers, want %d", len(rep.Items), len(want))
		}
		for i := range want {
			got := rep.Items[i]
			if got.ReserveReply != want[i].ReserveReply || (got.Err == nil) != (want[i].Err == nil) ||
				(got.Err != nil && *got.Err != *want[i].Err) {
				t.Fatalf("item %d = %+v (err %+v), want %+v (err %+v)", i, got.ReserveReply, got.Err, want[i].ReserveReply, want[i].Err)
			}
		}
		_, err = many(events.ReserveRequest{AccountID: c.ID, Count: 0}, events.ReserveRequest{AccountID: a.ID, Count: -1})
		wantCode(t, err, "bad_request")
		if got, _ := auth(t, r, n, token.Digest(a.Token)); got.Used != 10 {
			t.Fatalf("used after the calls = %d, want 10", got.Used)
		}
		if v := counterSum(t, r.reg, "apitosms_billing_reserved_messages_total"); v != 14 { // 6 + 3 + 4 + 1
			t.Fatalf("reserved messages metric = %v, want 14", v)
		}
	})
}

// TestReserveConcurrent: 40 callers racing for two accounts' quotas, through
// one replica or two replicas sharing the database (with separate broker
// connections and database handles), get exactly the quotas. Batches mix the
// two accounts in every order, which would deadlock PostgreSQL replicas
// locking rows in arrival order. Replicas of the first round keep serving in
// the second.
func TestReserveConcurrent(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		for _, replicas := range []int{1, 2} {
			rs := []*replica{startReplica(t, b)}
			if replicas == 2 {
				rs = append(rs, startReplica(t, b))
			}
			n := b.Names
			const limit = 1000
			accts := []account{rs[0].createAccount(t), rs[0].createAccount(t)}
			for _, a := range accts {
				rs[0].subscribe(t, a, map[string]any{"plan": "p", "monthlyLimit": limit})
			}

			var calls atomic.Int64
			granted := make([]atomic.Int64, len(accts))
			var wg sync.WaitGroup
			errs := make(chan error, 40)
			for g := range 40 {
				wg.Go(func() {
					rnd := rand.New(rand.NewPCG(uint64(g), uint64(replicas)))
					r, which := rs[g%len(rs)], (g/2)%len(accts)
					for {
						count := 1 + rnd.IntN(40)
						rep, err := reserve(t, r, n, accts[which].ID, count)
						if err != nil {
							errs <- err
							return
						}
						calls.Add(1)
						if rep.Used > limit || rep.Granted > count || rep.Granted < 0 {
							t.Errorf("reserve %d = %+v", count, rep)
						}
						granted[which].Add(int64(rep.Granted))
						if rep.Granted < count {
							return // the quota is exhausted
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("reserve: %v", err)
			}
			for i, a := range accts {
				if got := granted[i].Load(); got != limit {
					t.Fatalf("%d replicas: account %d granted %d in total, want exactly %d", replicas, i, got, limit)
				}
				if got, _ := auth(t, rs[0], n, token.Digest(a.Token)); got.Used != limit {
					t.Fatalf("%d replicas: account %d used = %d, want %d", replicas, i, got.Used, limit)
				}
			}
			var batched uint64
			var served float64
			for i, r := range rs {
				s := counterSum(t, r.reg, "apitosms_billing_reservations_total")
				if s == 0 {
					t.Fatalf("replica %d served no reservation", i)
				}
				served += s
				batched += histogramCount(t, r.reg, "apitosms_billing_group_commit_size")
			}
			if batched == 0 || float64(batched) > served {
				t.Fatalf("%d group commits for %v reservations", batched, served)
			}
			t.Logf("%d new replicas: %v of %d reservations in %d transactions", replicas, served, calls.Load(), batched)
		}
	})
}

// counterSum sums every series of the counter named name in reg.
func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return testkit.Metric(t, reg, name, nil)
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	return uint64(testkit.Metric(t, reg, name, nil))
}
