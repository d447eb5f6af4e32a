package store_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// fullCount is the oracle of the backlog counts: waiting and initiated
// messages counted row by row, as the gauges did before they were kept.
func fullCount(t testing.TB, st *store.Store) (waiting, initiated int64) {
	t.Helper()
	err := st.DB().DB.QueryRow(`SELECT
		(SELECT COUNT(*) FROM messages WHERE status = 0),
		(SELECT COUNT(*) FROM messages m WHERE m.status = 1 AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.pos = m.pos))`).
		Scan(&waiting, &initiated)
	if err != nil {
		t.Fatal(err)
	}
	return waiting, initiated
}

// checkCounts fails unless Backlog's kept counts equal the full count.
func checkCounts(t testing.TB, st *store.Store, at string) store.Backlog {
	t.Helper()
	bl, err := st.Backlog(context.Background())
	if err != nil {
		t.Fatalf("%s: backlog: %v", at, err)
	}
	if w, i := fullCount(t, st); bl.Waiting != w || bl.Initiated != i {
		t.Fatalf("%s: backlog counts %d waiting, %d initiated; a full count finds %d and %d", at, bl.Waiting, bl.Initiated, w, i)
	}
	return bl
}

// Backlog counts waiting and initiated (not reported) messages and finds
// the oldest waiting one, across accounts and lanes; scheduled messages do
// not wait until promoted.
func TestBacklog(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		if bl, err := st.Backlog(ctx); err != nil || bl.Waiting != 0 || bl.Initiated != 0 || !bl.OldestAt.IsZero() {
			t.Fatalf("empty backlog %+v, %v", bl, err)
		}
		if _, err := in.Insert(ctx, rows(1, 10, 6)); err != nil {
			t.Fatal(err)
		}
		if _, err := in.Insert(ctx, rows(2, 20, 4)); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
		// The oldest: a high-priority message of account 3 at the lowest
		// position; and one scheduled (not waiting).
		if _, err := in.Insert(ctx, []store.NewMessage{
			{Pos: 5, AccountID: 3, Phone: "+15550000000", Text: "x", AcceptedAt: old, High: true},
			{Pos: 6, AccountID: 3, Phone: "+15550000000", Text: "x", AcceptedAt: old, SendAt: time.Now().Add(time.Hour).UnixMilli()},
		}); err != nil {
			t.Fatal(err)
		}
		bl := checkCounts(t, st, "inserted")
		if bl.Waiting != 11 || bl.Initiated != 0 || !bl.OldestAt.Equal(old) {
			t.Fatalf("backlog %+v; want 11 waiting, oldest at %v", bl, old)
		}
		if _, err := st.Claim(ctx, 3, 1, store.NoBound, time.Now(), store.Confirm{}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Claim(ctx, 1, 4, store.NoBound, time.Now(), store.Confirm{}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.ApplyReports(ctx, []store.Report{{AccountID: 1, Pos: 10, Status: store.StatusSent, At: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		bl = checkCounts(t, st, "claimed and reported")
		if bl.Waiting != 6 || bl.Initiated != 4 || bl.OldestAt.IsZero() || time.Since(bl.OldestAt) > time.Minute {
			t.Fatalf("backlog %+v; want 6 waiting, 4 initiated, the oldest just now", bl)
		}
		// A report of a waiting message, a cancel, a promotion.
		if _, _, err := st.ApplyReports(ctx, []store.Report{{AccountID: 2, Pos: 20, Status: store.StatusFailed, At: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Cancel(ctx, 2, 21, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Promote(ctx, time.Now().Add(2*time.Hour), 10); err != nil {
			t.Fatal(err)
		}
		if bl = checkCounts(t, st, "reported, cancelled, promoted"); bl.Waiting != 5 || !bl.OldestAt.Equal(old) {
			t.Fatalf("backlog %+v; want 5 waiting, the promoted one oldest", bl)
		}
		// Retention removes final messages only: reported initiated ones
		// were not counted, waiting ones stay.
		if n, err := st.SweepRetention(ctx, time.Now().Add(time.Hour)); err != nil || n == 0 {
			t.Fatalf("retention removed %d, %v", n, err)
		}
		checkCounts(t, st, "after retention")
	})
}

// Concurrent claim groups (two replicas), reports, cancels, inserts and
// sweeps keep the counts exact: on PostgreSQL they commit at once, each
// adding to a shard row of its own choosing.
func TestBacklogCountsConcurrent(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		other := store.New(b.DB(t, store.Service)) // a second replica's pool
		ctx := context.Background()
		const accounts, per = 4, 500
		in := st.NewInserter()
		defer in.Close()
		for a := range int64(accounts) {
			if _, err := in.Insert(ctx, rows(a+1, 1+a*per, per)); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		handed := make(chan store.Report, accounts*per)
		groups := make([]*store.ClaimGroup, 2)
		for r, s := range []*store.Store{st, other} {
			g := s.NewClaimGroup(nil)
			defer g.Close()
			groups[r] = g
			for w := range 4 {
				wg.Go(func() {
					account := int64(1 + (r*4+w)%accounts)
					for {
						now := time.Now()
						// Some claims are never acknowledged and expire at once.
						confirm := store.Confirm{ID: store.NewClaimID(), Expires: now.Add(time.Duration(rand.IntN(2)) * time.Hour)}
						got, err := g.Claim(ctx, account, 1+rand.IntN(20), store.NoBound, now, confirm)
						if err != nil {
							t.Error(err)
							return
						}
						if len(got) == 0 {
							return
						}
						if rand.IntN(3) > 0 {
							if _, err := g.Ack(ctx, []int64{confirm.ID}); err != nil {
								t.Error(err)
								return
							}
						}
						for _, c := range got {
							handed <- store.Report{AccountID: account, Pos: c.Pos, Status: store.StatusSent + rand.IntN(2), At: now}
						}
					}
				})
			}
		}
		done := make(chan struct{})
		var side sync.WaitGroup
		side.Go(func() { // reports, in batches, from both replicas
			var batch []store.Report
			for i := 0; ; i++ {
				select {
				case r := <-handed:
					if rand.IntN(4) > 0 { // some are never reported
						batch = append(batch, r)
					}
					if len(batch) < 25 {
						continue
					}
				case <-done:
					return
				}
				// Half through the claim groups (on SQLite in the
				// claims' transactions), as the reported consumer does.
				var err error
				if i%4 < 2 {
					_, _, err = []*store.Store{st, other}[i%2].ApplyReports(ctx, batch)
				} else {
					_, err = groups[i%2].RecordReports(ctx, batch, nil)
				}
				if err != nil {
					t.Error(err)
					return
				}
				batch = nil
			}
		})
		side.Go(func() { // sweeps (requeues), cancels and more messages
			in := other.NewInserter()
			defer in.Close()
			next := int64(accounts*per + 1)
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := other.Sweep(ctx, time.Now(), 100); err != nil {
					t.Error(err)
					return
				}
				_, err := st.Cancel(ctx, 1, 1+rand.Int64N(per), time.Now())
				if err != nil && !strings.Contains(err.Error(), "handed out") && !strings.Contains(err.Error(), "not found") {
					t.Error(err)
					return
				}
				if _, err := in.Insert(ctx, rows(1+rand.Int64N(accounts), next, 10)); err != nil {
					t.Error(err)
					return
				}
				next += 10
			}
		})
		wg.Wait()
		close(done)
		side.Wait()
		checkCounts(t, st, "after the concurrent run")
		// Requeue everything still open, and count again.
		if _, err := st.Sweep(ctx, time.Now().Add(2*time.Hour), 100000); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, st, "after the last sweep")
	})
}

// The oldest waiting message is found by seeks of the claim index (a loose
// index scan over accounts and lanes), never by scanning messages nor
// sorting.
func TestBacklogOldestUsesClaimIndexSQLite(t *testing.T) {
	st := open(t, testkit.Embedded(t))
	r, err := st.DB().DB.Query("EXPLAIN QUERY PLAN " + store.OldestWaitingSQL)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var plan []string
	for r.Next() {
		var id, parent, unused int
		var detail string
		if err := r.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
		if strings.Contains(detail, "TEMP B-TREE") || strings.Contains(detail, "messages") && !strings.Contains(detail, "messages_claim_idx") && !strings.Contains(detail, "PRIMARY KEY") {
			t.Errorf("oldest waiting reads messages without the claim index: %q", detail)
		}
	}
	if len(plan) == 0 {
		t.Fatal("no plan")
	}
	t.Logf("plan %q", plan)
}

// The migration that creates backlog_counts sets it from a full count of
// the messages already stored.
func TestBacklogCountsMigration(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		if _, err := in.Insert(ctx, rows(1, 1, 50)); err != nil {
			t.Fatal(err)
		}
		if _, err := in.Insert(ctx, rows(2, 51, 30)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Claim(ctx, 1, 20, store.NoBound, time.Now(), store.Confirm{}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.ApplyReports(ctx, []store.Report{{AccountID: 1, Pos: 3, Status: store.StatusSent, At: time.Now()},
			{AccountID: 2, Pos: 60, Status: store.StatusFailed, At: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		// As before the migration: no table; then its statements, in order.
		dialect := "sqlite"
		if b.DatabaseURL != "" {
			dialect = "postgres"
		}
		sqlText, err := store.Migrations.ReadFile("migrations/" + dialect + "/20261202000001_backlog_counts.tx.up.sql")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.DB().DB.Exec("DROP TABLE backlog_counts"); err != nil {
			t.Fatal(err)
		}
		for _, stmt := range strings.Split(string(sqlText), "--bun:split") {
			if _, err := st.DB().DB.Exec(stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		if bl := checkCounts(t, st, "migrated"); bl.Waiting != 59 || bl.Initiated != 19 {
			t.Fatalf("migrated counts %+v, want 59 waiting, 19 initiated", bl)
		}
	})
}
