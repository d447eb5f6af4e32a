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

// A report records the final status, the device and its time on a message
// handed out (the tracking read model), once: the other final status later
// changes nothing, and another account's report is ignored.
func TestReportsRecordOutcome(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		if _, err := in.Insert(ctx, rows(1, 1, 3)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Claim(ctx, 1, 2, store.NoBound, time.Now(), store.Confirm{}); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		changed, missing, err := st.ApplyReports(ctx, []store.Report{
			{AccountID: 1, Pos: 1, Status: store.StatusSent, Device: "A", At: at}, // initiated
			{AccountID: 1, Pos: 3, Status: store.StatusFailed, At: at},            // new, no device
			{AccountID: 2, Pos: 2, Status: store.StatusSent, Device: "X", At: at}, // another account's
			{AccountID: 1, Pos: 9, Status: store.StatusSent, At: at},              // not stored
		})
		if err != nil || changed != 2 || missing != 1 {
			t.Fatalf("apply = %d, %d, %v; want 2 changed, 1 missing", changed, missing, err)
		}
		if _, _, err := st.ApplyReports(ctx, []store.Report{{AccountID: 1, Pos: 1, Status: store.StatusFailed, Device: "B", At: at.Add(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		got, err := st.Lookup(ctx, 1, []int64{1, 2, 3})
		if err != nil || len(got) != 3 {
			t.Fatalf("lookup: %v, %v", got, err)
		}
		slices.SortFunc(got, func(a, b store.Tracked) int { return int(a.Pos - b.Pos) })
		if g := got[0]; g.Status != store.StatusSent || g.Device != "A" || g.FinishedAt == nil || !g.FinishedAt.Equal(at) || g.ClaimedAt == nil || g.Attempts != 1 {
			t.Errorf("reported initiated message: %+v", g)
		}
		if g := got[1]; g.Status != store.StatusInitiated || g.Device != "" || g.FinishedAt != nil {
			t.Errorf("message reported by another account changed: %+v", g)
		}
		if g := got[2]; g.Status != store.StatusFailed || g.Device != "" || g.ClaimedAt != nil || g.Attempts != 0 || g.Text != "hello" {
			t.Errorf("reported new message: %+v", g)
		}
		if other, err := st.Lookup(ctx, 2, []int64{1, 2, 3}); err != nil || len(other) != 0 {
			t.Errorf("another account sees %d messages, %v", len(other), err)
		}
	})
}

// Cancels racing claims on the same messages: each message is either
// handed out or cancelled, never both, and a cancelled one is never handed
// out later. Claims take the oldest first while cancels walk from the
// newest, so they meet and contend in the middle.
func TestCancelVersusClaim(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		const n = 300
		if _, err := in.Insert(ctx, rows(1, 1, n)); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		claimed := map[int64]int{}
		cancelled := map[int64]int{}
		var wg sync.WaitGroup
		begin := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				<-begin
				for {
					got, err := st.Claim(ctx, 1, 3, store.NoBound, time.Now(), store.Confirm{})
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, c := range got {
						claimed[c.Pos]++
					}
					mu.Unlock()
				}
			})
		}
		for w := range 4 {
			wg.Go(func() {
				<-begin
				for pos := int64(n - w); pos >= 1; pos -= 4 {
					m, err := st.Cancel(ctx, 1, pos, time.Now())
					switch {
					case err == nil:
						if m.Status != store.StatusCancelled || m.Pos != pos {
							t.Errorf("cancel returned %+v", m)
						}
						mu.Lock()
						cancelled[pos]++
						mu.Unlock()
					case !errors.Is(err, store.ErrNotCancellable):
						t.Error(err)
						return
					}
				}
			})
		}
		close(begin)
		wg.Wait()
		if len(claimed) == 0 || len(cancelled) == 0 {
			t.Fatalf("%d claimed, %d cancelled: claims and cancels did not meet", len(claimed), len(cancelled))
		}
		for pos := int64(1); pos <= n; pos++ {
			if claimed[pos]+cancelled[pos] != 1 {
				t.Fatalf("message %d claimed %d times and cancelled %d times", pos, claimed[pos], cancelled[pos])
			}
		}
		if got, err := st.Claim(ctx, 1, 200, store.NoBound, time.Now(), store.Confirm{}); err != nil || len(got) != 0 {
			t.Fatalf("claim after the race: %d messages, %v", len(got), err)
		}
		if _, err := st.Cancel(ctx, 2, 1, time.Now()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another account's cancel: %v, want ErrNotFound", err)
		}
		t.Logf("%d claimed, %d cancelled", len(claimed), len(cancelled))
	})
}

// Pending refunds are taken exactly once by concurrent takers, and come
// back when returned.
func TestRefundsTakenOnce(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		msgs := rows(1, 1, 50)
		msgs[49].AcceptedAt = time.Date(2026, 11, 30, 23, 59, 0, 0, time.UTC)
		msgs[49].AccountID = 2
		if _, err := in.Insert(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		for pos := int64(1); pos <= 50; pos++ {
			account := int64(1)
			if pos == 50 {
				account = 2
			}
			if _, err := st.Cancel(ctx, account, pos, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		pending, err := st.PendingRefunds(ctx, 100)
		if err != nil || len(pending) != 50 {
			t.Fatalf("pending %d, %v", len(pending), err)
		}
		var mu sync.Mutex
		taken := map[int64]int{}
		months := map[string]int{}
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				refunds, err := st.TakeRefunds(ctx, pending)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for _, r := range refunds {
					months[r.Month] += len(r.Positions)
					for _, p := range r.Positions {
						taken[p]++
					}
				}
			})
		}
		wg.Wait()
		for _, p := range pending {
			if taken[p] != 1 {
				t.Fatalf("refund of %d taken %d times", p, taken[p])
			}
		}
		if months["2026-11"] != 1 {
			t.Fatalf("refunds by month %v", months)
		}
		if p, _ := st.PendingRefunds(ctx, 100); len(p) != 0 {
			t.Fatalf("still pending after taking: %v", p)
		}
		if err := st.ReturnRefunds(ctx, []int64{3, 4}); err != nil {
			t.Fatal(err)
		}
		if p, _ := st.PendingRefunds(ctx, 100); !slices.Equal(p, []int64{3, 4}) {
			t.Fatalf("pending after return: %v", p)
		}
	})
}

// The sweep removes final messages that became final before the cutoff,
// and nothing else: waiting and handed-out ones, recently final ones, and
// cancelled ones whose quota is not given back yet stay.
func TestSweepRetention(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
		old := now.Add(-40 * 24 * time.Hour)
		msgs := rows(1, 1, 3000)
		for i := range msgs {
			msgs[i].AcceptedAt = old
		}
		msgs[2999].AcceptedAt = now
		if _, err := in.Insert(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		// 1..2000 handed out; 1..1500 reported long ago, 1501..1600 recently.
		for c := 0; c < 2000; {
			got, err := st.Claim(ctx, 1, 200, 2000, old, store.Confirm{})
			if err != nil {
				t.Fatal(err)
			}
			c += len(got)
		}
		var reports []store.Report
		for pos := int64(1); pos <= 1600; pos++ {
			at := old.Add(time.Hour)
			if pos > 1500 {
				at = now.Add(-time.Hour)
			}
			reports = append(reports, store.Report{AccountID: 1, Pos: pos, Status: store.StatusSent, At: at})
		}
		if _, _, err := st.ApplyReports(ctx, reports); err != nil {
			t.Fatal(err)
		}
		// Cancelled long ago: 2001 refunded, 2002 refund pending.
		for _, pos := range []int64{2001, 2002} {
			if _, err := st.Cancel(ctx, 1, pos, old.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.TakeRefunds(ctx, []int64{2001}); err != nil {
			t.Fatal(err)
		}
		cutoff := now.Add(-30 * 24 * time.Hour)
		removed, err := st.SweepRetention(ctx, cutoff)
		if err != nil || removed != 1501 {
			t.Fatalf("sweep removed %d, %v; want 1501", removed, err)
		}
		if removed, err := st.SweepRetention(ctx, cutoff); err != nil || removed != 0 {
			t.Fatalf("second sweep removed %d, %v", removed, err)
		}
		left, err := st.Lookup(ctx, 1, []int64{1, 1500, 1501, 1999, 2001, 2002, 2003, 3000})
		if err != nil {
			t.Fatal(err)
		}
		var pos []int64
		for _, m := range left {
			pos = append(pos, m.Pos)
		}
		slices.Sort(pos)
		if !slices.Equal(pos, []int64{1501, 1999, 2002, 2003, 3000}) {
			t.Fatalf("left after sweep: %v", pos)
		}
	})
}

// History walks the account indexes of messages and scheduled backwards
// (SQLite plan), and the tracking reads find rows by primary key in both.
func TestTrackingPlansSQLite(t *testing.T) {
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
	arm := []any{1, 100, 2, 3, "+1555", 10} // History's parameters per table
	if p := plan(store.HistorySQL(st, 2, true), append(append(slices.Clone(arm), arm...), 10)...); !strings.Contains(p, "messages_account_idx (account_id=? AND pos<?)") ||
		!strings.Contains(p, "scheduled_account_idx (account_id=? AND pos<?)") || strings.Contains(p, "SCAN m") {
		// Each arm reads at most Limit rows by index; the merge sorts those.
		t.Fatalf("history plan %q", p)
	}
	if p := plan(store.LookupSQL(st, 2), 1, 1025, 1026, 1, 1025, 1026); strings.Count(p, "SEARCH m USING INTEGER PRIMARY KEY") != 2 || strings.Contains(p, "SCAN") {
		t.Fatalf("lookup plan %q", p)
	}
}
