package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// scheduledCount counts the rows of the scheduled table.
func scheduledCount(t *testing.T, st *store.Store) int {
	t.Helper()
	var n int
	if err := st.DB().DB.QueryRow("SELECT COUNT(*) FROM scheduled").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Scheduled messages wait in their own table; once due, Promote moves them
// into messages at their own position, so they go out at their FIFO place
// among messages that were due all along. A redelivered batch adds nothing,
// whichever table its messages are in by then.
func TestPromoteMovesToFIFOPlace(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		now := time.Now()
		later := now.Add(time.Hour)
		batch := []store.NewMessage{msg(1, time.Time{}, time.Time{}, false), msg(2, later, time.Time{}, false),
			msg(3, time.Time{}, time.Time{}, false), msg(4, later, time.Time{}, false), msg(5, time.Time{}, time.Time{}, false)}
		insert(t, st, slices.Clone(batch)...)
		if n := scheduledCount(t, st); n != 2 {
			t.Fatalf("scheduled rows = %d, want 2", n)
		}
		if n, err := st.Promote(ctx, now, 100); err != nil || n != 0 {
			t.Fatalf("promote before due = %d, %v", n, err)
		}
		if n, err := st.Promote(ctx, later.Add(time.Second), 100); err != nil || n != 2 {
			t.Fatalf("promote when due = %d, %v; want 2", n, err)
		}
		if n := scheduledCount(t, st); n != 0 {
			t.Fatalf("scheduled rows after promote = %d", n)
		}
		in := st.NewInserter()
		defer in.Close()
		if added, err := in.Insert(ctx, slices.Clone(batch)); err != nil || added != 0 {
			t.Fatalf("redelivered batch added %d, %v", added, err)
		}
		if got := claimAt(t, st, later.Add(time.Second), 10); !slices.Equal(got, []int64{1, 2, 3, 4, 5}) {
			t.Fatalf("claimed %v, want 1..5 in FIFO order", got)
		}
		// Redelivered while still scheduled but past its sendAt: the
		// scheduled row stays the only one.
		insert(t, st, msg(6, time.Now().Add(time.Hour), time.Time{}, false))
		m := msg(6, time.Now().Add(-time.Second), time.Time{}, false)
		if added, err := in.Insert(ctx, []store.NewMessage{m}); err != nil || added != 0 {
			t.Fatalf("due redelivery of a scheduled message added %d, %v", added, err)
		}
		if got := lookup(t, st, 6); got.Status != store.StatusNew || got.SendAt == 0 {
			t.Fatalf("message 6 tracked as %+v", got)
		}
	})
}

// A cancel racing the promotion of the same message, with claims running
// too: each message ends cancelled or handed out, exactly one of the two,
// and is found exactly once.
func TestCancelRacesPromote(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		const n = 300
		sendAt := time.Now().Add(time.Hour)
		due := sendAt.Add(time.Second)
		var batch []store.NewMessage
		for i := range n {
			batch = append(batch, msg(int64(i+1), sendAt, time.Time{}, false))
		}
		insert(t, st, batch...)

		var stop atomic.Bool
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		var claimed []int64
		wg.Go(func() { // promoter, a few rows at a time
			for !stop.Load() {
				if _, err := st.Promote(ctx, due, 7); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Go(func() { // a phone
			for !stop.Load() {
				got, err := st.Claim(ctx, 1, 5, store.NoBound, due, store.Confirm{})
				if err != nil {
					errs <- err
					return
				}
				claimed = append(claimed, positions(got)...)
			}
		})
		cancelled := map[int64]bool{}
		for i := n; i >= 1; i-- { // from the end: the promoter works from the start
			_, err := st.Cancel(ctx, 1, int64(i), time.Now())
			switch {
			case err == nil:
				cancelled[int64(i)] = true
			case errors.Is(err, store.ErrNotCancellable):
			default:
				t.Errorf("cancel %d: %v", i, err)
			}
		}
		stop.Store(true)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if _, err := st.Promote(ctx, due, n); err != nil {
			t.Fatal(err)
		}
		claimed = append(claimed, claimAt(t, st, due, n)...)
		seen := map[int64]int{}
		for _, p := range claimed {
			seen[p]++
			if cancelled[p] {
				t.Errorf("message %d both cancelled and handed out", p)
			}
		}
		for i := int64(1); i <= n; i++ {
			if !cancelled[i] && seen[i] != 1 {
				t.Errorf("message %d handed out %d times, not cancelled", i, seen[i])
			}
		}
		all := make([]int64, n)
		for i := range all {
			all[i] = int64(i + 1)
		}
		found, err := st.Lookup(ctx, 1, all)
		if err != nil || len(found) != n {
			t.Fatalf("lookup found %d of %d, %v", len(found), n, err)
		}
		for _, m := range found {
			want := store.StatusInitiated
			if cancelled[m.Pos] {
				want = store.StatusCancelled
			}
			if m.Status != want {
				t.Errorf("message %d status %d, want %d", m.Pos, m.Status, want)
			}
		}
		if c := scheduledCount(t, st); c != 0 {
			t.Errorf("%d rows left scheduled", c)
		}
	})
}

// Lookups and history pages read while scheduled messages move find each
// message exactly once.
func TestLookupDuringMove(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		const n = 1000
		sendAt := time.Now().Add(time.Hour)
		var batch []store.NewMessage
		all := make([]int64, n)
		for i := range n {
			all[i] = int64(i + 1)
			at := sendAt
			if i%2 == 0 {
				at = time.Time{} // due at once
			}
			batch = append(batch, msg(int64(i+1), at, time.Time{}, false))
		}
		insert(t, st, batch...)

		var stop atomic.Bool
		var reads atomic.Int64
		reading := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		wg.Go(func() {
			for !stop.Load() {
				found, err := st.Lookup(ctx, 1, all)
				if err == nil {
					err = exactlyOnce("lookup", found, n)
				}
				if err == nil {
					var page []store.Tracked
					page, err = st.History(ctx, store.HistoryQuery{AccountID: 1, Before: n + 1, Limit: n})
					if err == nil {
						err = exactlyOnce("history", page, n)
					}
				}
				if err != nil {
					errs <- err
					if reads.Load() == 0 {
						close(reading)
					}
					return
				}
				if reads.Add(1) == 1 {
					close(reading)
				}
			}
		})
		<-reading // the moves below run while the reader reads on
		for moved := 0; moved < n/2; {
			k, err := st.Promote(ctx, sendAt.Add(time.Second), 20)
			if err != nil {
				t.Error(err)
				break
			}
			moved += int(k)
		}
		stop.Store(true)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if c := scheduledCount(t, st); c != 0 {
			t.Fatalf("%d rows left scheduled", c)
		}
	})
}

// exactlyOnce checks that found holds positions 1..n once each.
func exactlyOnce(what string, found []store.Tracked, n int) error {
	seen := make(map[int64]int, n)
	for _, m := range found {
		seen[m.Pos]++
	}
	for i := int64(1); i <= int64(n); i++ {
		if seen[i] != 1 {
			return fmt.Errorf("%s found message %d %d times", what, i, seen[i])
		}
	}
	return nil
}
