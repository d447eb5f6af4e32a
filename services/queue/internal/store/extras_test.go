package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// msg is a message of account 1 at pos with §12 fields.
func msg(pos int64, sendAt, validUntil time.Time, high bool) store.NewMessage {
	m := store.NewMessage{Pos: pos, AccountID: 1, Phone: "+15550000000", Text: "hello", AcceptedAt: time.Now(), High: high}
	if !sendAt.IsZero() {
		m.SendAt = sendAt.UnixMilli()
	}
	if !validUntil.IsZero() {
		m.ValidUntil = validUntil.UnixMilli()
	}
	return m
}

func insert(t *testing.T, st *store.Store, msgs ...store.NewMessage) {
	t.Helper()
	in := st.NewInserter()
	defer in.Close()
	if _, err := in.Insert(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
}

func claimAt(t *testing.T, st *store.Store, now time.Time, limit int) []int64 {
	t.Helper()
	got, err := st.Claim(context.Background(), 1, limit, store.NoBound, now, store.Confirm{})
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return positions(got)
}

func lookup(t *testing.T, st *store.Store, pos int64) store.Tracked {
	t.Helper()
	got, err := st.Lookup(context.Background(), 1, []int64{pos})
	if err != nil || len(got) != 1 {
		t.Fatalf("lookup %d: %v, %v", pos, got, err)
	}
	return got[0]
}

// A message with sendAt is not handed out before it: it waits out of the
// claim index (tracking shows it new, it can be cancelled) until promoted,
// and then goes out at its FIFO place.
func TestScheduledNotHandedOutBeforeDue(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		now := time.Now()
		insert(t, st, msg(1, time.Time{}, time.Time{}, false), msg(2, now.Add(time.Hour), time.Time{}, false),
			msg(3, now.Add(-time.Minute), time.Time{}, false), msg(4, now.Add(time.Hour), time.Time{}, false),
			msg(5, time.Time{}, time.Time{}, false))
		if got := claimAt(t, st, now, 2); !slices.Equal(got, []int64{1, 3}) { // 3 is due already
			t.Fatalf("claim got %v, want [1 3]", got)
		}
		if g := lookup(t, st, 2); g.Status != store.StatusNew {
			t.Fatalf("scheduled message tracked as %d, want new", g.Status)
		}
		if n, err := st.Promote(ctx, now.Add(time.Hour-time.Second), 100); err != nil || n != 0 {
			t.Fatalf("early promote = %d, %v", n, err)
		}
		if _, err := st.Cancel(ctx, 1, 4, now); err != nil {
			t.Fatalf("cancel of a scheduled message: %v", err)
		}
		if n, err := st.Promote(ctx, now.Add(time.Hour), 100); err != nil || n != 1 {
			t.Fatalf("promote = %d, %v; want 1", n, err)
		}
		if got := claimAt(t, st, now.Add(time.Hour), 10); !slices.Equal(got, []int64{2, 5}) {
			t.Fatalf("claim after promotion got %v, want [2 5]", got)
		}
	})
}

// A waiting message past its validUntil is never handed out; the sweeper
// expires it (status 4, outcome, quota refund pending), and a late report
// or cancel changes nothing.
func TestLifetimeExpiry(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		now := time.Now()
		insert(t, st, msg(1, time.Time{}, now.Add(time.Minute), false), msg(2, time.Time{}, time.Time{}, false),
			msg(3, now.Add(time.Hour), now.Add(2*time.Hour), true))
		later := now.Add(2 * time.Minute)
		if got := claimAt(t, st, later, 10); !slices.Equal(got, []int64{2}) {
			t.Fatalf("claim got %v, want [2]", got)
		}
		dead, err := st.ExpireDue(ctx, later, 100)
		if err != nil || !slices.Equal(dead, []int64{1}) {
			t.Fatalf("expire = %v, %v; want [1]", dead, err)
		}
		if g := lookup(t, st, 1); g.Status != store.StatusExpired || g.FinishedAt == nil || g.Attempts != 0 {
			t.Fatalf("expired message: %+v", g)
		}
		if pending, err := st.PendingRefunds(ctx, 10); err != nil || !slices.Equal(pending, []int64{1}) {
			t.Fatalf("pending refunds %v, %v; want [1]", pending, err)
		}
		if _, err := st.Cancel(ctx, 1, 1, later); !errors.Is(err, store.ErrNotCancellable) {
			t.Fatalf("cancel of an expired message: %v", err)
		}
		if _, _, err := st.ApplyReports(ctx, []store.Report{{AccountID: 1, Pos: 1, Status: store.StatusSent, At: later}}); err != nil {
			t.Fatal(err)
		}
		if g := lookup(t, st, 1); g.Status != store.StatusExpired {
			t.Fatalf("a report changed an expired message: %+v", g)
		}
		// A scheduled message expires too (it never became due in time).
		if dead, err := st.ExpireDue(ctx, now.Add(3*time.Hour), 100); err != nil || !slices.Equal(dead, []int64{3}) {
			t.Fatalf("expire scheduled = %v, %v; want [3]", dead, err)
		}
		if n, err := st.Promote(ctx, now.Add(3*time.Hour), 100); err != nil || n != 0 {
			t.Fatalf("promote after expiry = %d, %v", n, err)
		}
	})
}

// High messages go out before normal ones, FIFO within each, whatever the
// claim sizes.
func TestPriorityOrder(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		var msgs []store.NewMessage
		for p := int64(1); p <= 10; p++ {
			msgs = append(msgs, msg(p, time.Time{}, time.Time{}, p%3 == 0))
		}
		insert(t, st, msgs...)
		if got := claimAt(t, st, time.Now(), 4); !slices.Equal(got, []int64{3, 6, 9, 1}) {
			t.Fatalf("first claim %v, want [3 6 9 1]", got)
		}
		insert(t, st, msg(11, time.Time{}, time.Time{}, true))
		if got := claimAt(t, st, time.Now(), 100); !slices.Equal(got, []int64{11, 2, 4, 5, 7, 8, 10}) {
			t.Fatalf("second claim %v", got)
		}
	})
}

// leased claims limit messages of account 1 under a confirmed claim at now
// and acks it at once (as ingress does).
func leased(t *testing.T, st *store.Store, now time.Time, limit int) []int64 {
	t.Helper()
	ctx := context.Background()
	id := store.NewClaimID()
	got, err := st.Claim(ctx, 1, limit, store.NoBound, now, store.Confirm{ID: id, Expires: now.Add(30 * time.Second)})
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if n, err := st.Ack(ctx, []int64{id}); err != nil || n != 0 {
		t.Fatalf("ack of a leased claim = %d, %v; want it left open", n, err)
	}
	return positions(got)
}

// With a lease in requeue mode, what is not reported within the lease goes
// back to its FIFO place with one more attempt, until maxAttempts hand-outs,
// then it expires; a report before the lease ends, or after a requeue,
// settles the message.
func TestLeaseRequeue(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		if err := st.PutSettings(ctx, 1, store.Settings{LeaseSeconds: 60, OnExpiry: "requeue", MaxAttempts: 2}); err != nil {
			t.Fatal(err)
		}
		insert(t, st, rows(1, 1, 4)...)
		now := time.Now()
		if got := leased(t, st, now, 2); !slices.Equal(got, []int64{1, 2}) {
			t.Fatalf("claim got %v", got)
		}
		if sw, err := st.Sweep(ctx, now.Add(59*time.Second), 100); err != nil || sw.Claims != 0 {
			t.Fatalf("sweep inside the lease: %+v, %v", sw, err)
		}
		if _, _, err := st.ApplyReports(ctx, []store.Report{{AccountID: 1, Pos: 2, Status: store.StatusSent, At: now}}); err != nil {
			t.Fatal(err)
		}
		sw, err := st.Sweep(ctx, now.Add(60*time.Second), 100)
		if err != nil || sw.Claims != 1 || sw.Requeued != 1 || len(sw.Expired) != 0 {
			t.Fatalf("sweep at the lease's end: %+v, %v; want 1 requeued", sw, err)
		}
		if g := lookup(t, st, 1); g.Status != store.StatusNew || g.Attempts != 1 {
			t.Fatalf("requeued message: %+v", g)
		}
		if g := lookup(t, st, 2); g.Status != store.StatusSent {
			t.Fatalf("reported message: %+v", g)
		}
		now = now.Add(time.Minute)
		if got := leased(t, st, now, 2); !slices.Equal(got, []int64{1, 3}) { // back at its FIFO place
			t.Fatalf("second claim got %v, want [1 3]", got)
		}
		sw, err = st.Sweep(ctx, now.Add(time.Minute), 100)
		if err != nil || sw.Claims != 1 || sw.Requeued != 1 || !slices.Equal(sw.Expired, []int64{1}) {
			t.Fatalf("second sweep: %+v, %v; want 3 requeued and 1 expired", sw, err)
		}
		if g := lookup(t, st, 1); g.Status != store.StatusExpired || g.Attempts != 2 || g.FinishedAt == nil {
			t.Fatalf("message after maxAttempts: %+v", g)
		}
		if pending, err := st.PendingRefunds(ctx, 10); err != nil || !slices.Equal(pending, []int64{1}) {
			t.Fatalf("pending refunds %v, %v", pending, err)
		}
		// A late report of the requeued message still settles it.
		if changed, _, err := st.ApplyReports(ctx, []store.Report{{AccountID: 1, Pos: 3, Status: store.StatusSent, At: now},
			{AccountID: 1, Pos: 1, Status: store.StatusSent, At: now}}); err != nil || changed != 1 {
			t.Fatalf("late reports = %d, %v; want the requeued one applied, the expired one not", changed, err)
		}
		if got := claimAt(t, st, now.Add(2*time.Minute), 10); !slices.Equal(got, []int64{4}) {
			t.Fatalf("final claim %v, want [4]", got)
		}
	})
}

// In expire mode what is not reported within the lease expires at once; a
// report arriving after that changes nothing, one before settles it.
func TestLeaseExpire(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		if err := st.PutSettings(ctx, 1, store.Settings{LeaseSeconds: 120, OnExpiry: "expire", MaxAttempts: 3}); err != nil {
			t.Fatal(err)
		}
		if s, err := st.GetSettings(ctx, 1); err != nil || s != (store.Settings{LeaseSeconds: 120, OnExpiry: "expire", MaxAttempts: 3}) {
			t.Fatalf("settings %+v, %v", s, err)
		}
		if s, err := st.GetSettings(ctx, 2); err != nil || s != store.DefaultSettings {
			t.Fatalf("default settings %+v, %v", s, err)
		}
		insert(t, st, rows(1, 1, 3)...)
		now := time.Now()
		leased(t, st, now, 3)
		if _, _, err := st.ApplyReports(ctx, []store.Report{{AccountID: 1, Pos: 3, Status: store.StatusFailed, At: now}}); err != nil {
			t.Fatal(err)
		}
		sw, err := st.Sweep(ctx, now.Add(2*time.Minute), 100)
		if err != nil || sw.Claims != 1 || sw.Requeued != 0 || !slices.Equal(sw.Expired, []int64{1, 2}) {
			t.Fatalf("sweep: %+v, %v; want 1 and 2 expired", sw, err)
		}
		if g := lookup(t, st, 3); g.Status != store.StatusFailed {
			t.Fatalf("reported message: %+v", g)
		}
		if changed, _, err := st.ApplyReports(ctx, []store.Report{{AccountID: 1, Pos: 1, Status: store.StatusSent, At: now}}); err != nil || changed != 0 {
			t.Fatalf("report after expiry = %d, %v", changed, err)
		}
		// Switching the lease off: claims are final at their ack again.
		if err := st.PutSettings(ctx, 1, store.DefaultSettings); err != nil {
			t.Fatal(err)
		}
		insert(t, st, rows(1, 4, 1)...)
		id := store.NewClaimID()
		if _, err := st.Claim(ctx, 1, 1, store.NoBound, now, store.Confirm{ID: id, Expires: now.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
		if n, err := st.Ack(ctx, []int64{id}); err != nil || n != 1 {
			t.Fatalf("ack without a lease = %d, %v", n, err)
		}
	})
}

// Two replicas sweep leased claims at once: each message is requeued or
// expired exactly once.
func TestConcurrentLeaseSweeps(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		other := store.New(b.DB(t, store.Service))
		ctx := context.Background()
		if err := st.PutSettings(ctx, 1, store.Settings{LeaseSeconds: 60, OnExpiry: "requeue", MaxAttempts: 1}); err != nil {
			t.Fatal(err)
		}
		const claims, per = 40, 5
		insert(t, st, rows(1, 1, claims*per)...)
		now := time.Now()
		for range claims {
			leased(t, st, now, per)
		}
		var mu sync.Mutex
		var total store.Swept
		var wg sync.WaitGroup
		for _, s := range []*store.Store{st, other, st, other} {
			wg.Go(func() {
				for {
					sw, err := s.Sweep(ctx, now.Add(time.Hour), 3)
					if err != nil {
						t.Errorf("sweep: %v", err)
						return
					}
					mu.Lock()
					total.Claims += sw.Claims
					total.Requeued += sw.Requeued
					total.Expired = append(total.Expired, sw.Expired...)
					mu.Unlock()
					if sw.Claims == 0 {
						return
					}
				}
			})
		}
		wg.Wait()
		slices.Sort(total.Expired)
		if total.Claims != claims || total.Requeued != 0 || !slices.Equal(total.Expired, span(1, claims*per)) {
			t.Fatalf("swept %d claims, %d requeued, %d expired; want every message expired once", total.Claims, total.Requeued, len(total.Expired))
		}
		if pending, err := st.PendingRefunds(ctx, 1000); err != nil || len(pending) != claims*per {
			t.Fatalf("pending refunds %d, %v", len(pending), err)
		}
	})
}

// The sweeper's probes and updates find their rows through their partial
// indexes, never by scanning the backlog.
func TestExtrasPlansSQLite(t *testing.T) {
	st := open(t, testkit.Embedded(t))
	plan := func(query string, args ...any) string {
		r, err := st.DB().DB.Query("EXPLAIN QUERY PLAN "+query, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out []string
		for r.Next() {
			var id, parent, unused int
			var detail string
			if err := r.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			out = append(out, detail)
		}
		return strings.Join(out, "; ")
	}
	for _, c := range []struct {
		sql, index string
		args       []any
	}{
		{st.PromoteProbeSQL(), "scheduled_send_idx", []any{1}},
		{st.PickDueSQL(), "scheduled_send_idx", []any{1, 10}},
		{st.PickEndedSQL(), "scheduled_valid_idx", []any{1, 10}},
		{store.ExpireScheduledProbeSQL, "scheduled_valid_idx", []any{1}},
		{store.ExpireProbeSQL, "messages_valid_idx", []any{1}},
		{store.ExpireSQL, "messages_valid_idx", []any{1, 10}},
	} {
		if p := plan(c.sql, c.args...); !strings.Contains(p, "INDEX "+c.index+" ") || strings.Contains(p, "SCAN") {
			t.Errorf("plan of %q: %q, want %s", c.sql, p, c.index)
		}
	}
}
