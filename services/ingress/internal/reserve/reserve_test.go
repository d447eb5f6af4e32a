package reserve

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/testkit"
)

// quotas answers billing's two reservation calls on real NATS the way
// billing does: every account has limit messages a month, reservations are
// applied one by one in order, account unknown is not found.
type quotas struct {
	limit   int64
	unknown int64

	mu    sync.Mutex
	used  map[int64]int64
	calls int
}

var errNotFound = apperr.New(http.StatusNotFound, "account_not_found", "Account not found")

func (q *quotas) apply(req events.ReserveRequest) (events.ReserveReply, error) {
	if req.AccountID == q.unknown {
		return events.ReserveReply{}, errNotFound
	}
	granted := min(int64(req.Count), q.limit-q.used[req.AccountID])
	q.used[req.AccountID] += granted
	return events.ReserveReply{Granted: int(granted), Used: q.used[req.AccountID], Limit: q.limit,
		Month: "2026-12", SubscriptionActive: true}, nil
}

func (q *quotas) arrived() {
	q.mu.Lock()
	q.calls++
	q.mu.Unlock()
}

// state returns the calls so far and the usage of account.
func (q *quotas) state(account int64) (calls int, used int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.calls, q.used[account]
}

// serve answers reserve (and reserve-many when many) until the test ends.
func (q *quotas) serve(t testing.TB, b testkit.Backend, many bool) {
	t.Helper()
	nc := b.Broker(t).Conn
	srv := rpc.NewServer(nc, "billing", 8, rpc.NewMetrics(prometheus.NewRegistry(), "billing"), testkit.Logger(t))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	err := rpc.Handle(srv, b.Names.BillingReserve(), "reserve", func(_ context.Context, req events.ReserveRequest) (events.ReserveReply, error) {
		q.arrived()
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.apply(req)
	})
	if err == nil && many {
		err = rpc.Handle(srv, b.Names.BillingReserveMany(), "reserve-many", func(_ context.Context, req events.ReserveManyRequest) (events.ReserveManyReply, error) {
			q.arrived()
			q.mu.Lock()
			defer q.mu.Unlock()
			out := events.ReserveManyReply{Items: make([]events.ReserveOutcome, len(req.Items))}
			for i, it := range req.Items {
				rep, err := q.apply(it)
				if e, ok := apperr.As(err); ok {
					out.Items[i].Err = &events.ItemError{Status: e.Status, Code: e.Code, Message: e.Message}
				}
				out.Items[i].ReserveReply = rep
			}
			return out, nil
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// startWhenQueued waits until n reservations wait in r (handed over before
// Run), then runs r with one loop until the test ends: the loop's first
// call carries them all.
func startWhenQueued(t *testing.T, r *Reserver, n int) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, "reservations queued", func() bool { return r.g.Waiting() == n })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx, 1) }()
	t.Cleanup(func() { cancel(); <-done })
}

// Reservations arriving while calls are in flight share the next call,
// and each still gets exactly the grant of its place in the order: the
// quotas are taken exactly, never more.
func TestConcurrentReservationsShareCalls(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		q := &quotas{limit: 50, used: map[int64]int64{}}
		q.serve(t, b, true)
		r := New(b.Broker(t).Conn, b.Names)
		const requests, accounts = 120, 3
		var mu sync.Mutex
		granted := map[int64]int64{}
		seenUsed := map[int64]map[int64]bool{}
		var wg sync.WaitGroup
		for g := range requests {
			acct := int64(g%accounts + 1)
			wg.Go(func() {
				rep, err := r.Reserve(context.Background(), acct, 2)
				if err != nil {
					t.Errorf("reserve: %v", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				granted[acct] += int64(rep.Granted)
				if rep.Granted > 0 {
					if seenUsed[acct] == nil {
						seenUsed[acct] = map[int64]bool{}
					}
					if seenUsed[acct][rep.Used] {
						t.Errorf("account %d: two grants answered used=%d", acct, rep.Used)
					}
					seenUsed[acct][rep.Used] = true
				}
			})
		}
		startWhenQueued(t, r, requests)
		wg.Wait()
		for acct := int64(1); acct <= accounts; acct++ {
			if granted[acct] != q.limit {
				t.Fatalf("account %d: granted %d in all, want exactly %d", acct, granted[acct], q.limit)
			}
		}
		if calls, _ := q.state(0); calls != 1 {
			t.Fatalf("%d billing calls for %d reservations waiting together, want 1", calls, requests)
		}
	})
}

// A reservation that fails alone (an unknown account) gets its error; the
// others of its call get their grants.
func TestOneReservationFailsAlone(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		q := &quotas{limit: 100, unknown: 999, used: map[int64]int64{}}
		q.serve(t, b, true)
		r := New(b.Broker(t).Conn, b.Names)
		accts := []int64{1, 1, 1, 999, 1, 1}
		errs := make([]error, len(accts))
		var wg sync.WaitGroup
		for i, acct := range accts {
			wg.Go(func() { _, errs[i] = r.Reserve(context.Background(), acct, 1) })
		}
		startWhenQueued(t, r, len(accts))
		wg.Wait()
		for i, err := range errs {
			e, ok := apperr.As(err)
			switch {
			case accts[i] == 999 && (!ok || e.Code != "account_not_found"):
				t.Fatalf("unknown account: err %v, want account_not_found", err)
			case accts[i] != 999 && err != nil:
				t.Fatalf("reservation %d: %v", i, err)
			}
		}
		if _, used := q.state(1); used != 5 {
			t.Fatalf("used %d, want 5", used)
		}
	})
}

// A billing that does not answer reserve-many (one from before it, during
// a rolling upgrade) gets one call per reservation, and every reservation
// its grant.
func TestWithoutReserveMany(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		q := &quotas{limit: 100, used: map[int64]int64{}}
		q.serve(t, b, false)
		r := New(b.Broker(t).Conn, b.Names)
		const requests = 10
		var wg sync.WaitGroup
		for range requests {
			wg.Go(func() {
				if rep, err := r.Reserve(context.Background(), 7, 3); err != nil || rep.Granted != 3 {
					t.Errorf("reserve = %+v, %v", rep, err)
				}
			})
		}
		startWhenQueued(t, r, requests)
		wg.Wait()
		if calls, used := q.state(7); used != 3*requests || calls != requests {
			t.Fatalf("used %d in %d calls, want %d in %d", used, calls, 3*requests, requests)
		}
	})
}

// A caller whose context ends before its reservation is handed over gets
// the context's error; after Run stopped, reservations are refused as
// unavailable.
func TestReserveGivesUpAndStops(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		r := New(b.Broker(t).Conn, b.Names)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := r.Reserve(ctx, 1, 1); !errors.Is(err, context.Canceled) {
			t.Fatalf("reserve with an ended context: %v", err)
		}
		r.Run(ctx, 2) // returns at once: ctx has ended and nothing waits
		if _, err := r.Reserve(context.Background(), 1, 1); !apperr.Unavailable(err) {
			t.Fatalf("reserve after Run stopped: %v, want unavailable", err)
		}
	})
}
