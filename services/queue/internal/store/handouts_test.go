package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/database"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// checkNamed requires rec to name want messages, each as tracking shows it
// after the commit (what the rows read in full give: see
// TestRecordReportsFinalEqualsLookup).
func checkNamed(t *testing.T, st *store.Store, name string, rec store.Recorded, want int) {
	t.Helper()
	if len(rec.Final) != want {
		t.Fatalf("%s: %d named, want %d: %+v", name, len(rec.Final), want, rec.Final)
	}
	if want == 0 {
		return
	}
	looked, err := st.Lookup(context.Background(), rec.Final[0].AccountID, finalPositions(rec))
	if err != nil || len(looked) != want {
		t.Fatalf("%s: %d looked up, %v", name, len(looked), err)
	}
	byPos := make(map[int64]store.Tracked, len(looked))
	for _, l := range looked {
		byPos[l.Pos] = l
	}
	for _, f := range rec.Final {
		if l := byPos[f.Pos]; !sameTracked(f, l) {
			t.Fatalf("%s: named\n%+v\ntracking shows\n%+v", name, f, l)
		}
	}
}

// kept checks how many hand-outs st remembers (none on PostgreSQL, where
// RememberHandOuts does nothing).
func kept(t *testing.T, st *store.Store, name string, want int) {
	t.Helper()
	if database.IsPostgres(st.DB()) {
		want = 0
	}
	if got := store.HandOutsKept(st); got != want {
		t.Fatalf("%s: %d hand-outs kept, want %d", name, got, want)
	}
}

// sentReports reports every position of positions sent by device at at.
func sentReports(account int64, positions []int64, device string, at time.Time) []store.Report {
	out := make([]store.Report, len(positions))
	for i, p := range positions {
		status := store.StatusSent
		if i%3 == 1 {
			status = store.StatusFailed
		}
		out[i] = store.Report{AccountID: account, Pos: p, Status: status, Device: device, At: at}
	}
	return out
}

// With the told accounts' hand-outs remembered (RememberHandOuts), the
// messages RecordReports names are still what tracking shows after the
// commit, field for field: built from the claim's hand-out when the row
// still carries that claim and its outcome is recorded now, read in full
// otherwise. Covered: hostile texts and §12 fields under a confirmed and an
// open claim and never handed out, beside an untold account's rows; rows
// handed out again under a claim not remembered (another id, more
// attempts); rows requeued by a sweep and handed out again unconfirmed;
// a redelivery whose hand-outs are still remembered (their outcome was
// recorded by an untold call). SQLite uses the hand-outs (the counts say
// so); PostgreSQL reads in full as before.
func TestHandOutsNameWhatTrackingShows(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		told := true
		st.RememberHandOuts(func(account int64) bool { return account == 1 && told })
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		hostile := hostileTexts(st)
		if _, err := in.Insert(ctx, append(hostileMessages(hostile), rows(2, 101, 4)...)); err != nil {
			t.Fatal(err)
		}
		hour := time.Now().Add(time.Hour)
		claim := func(account int64, n int, confirm store.Confirm) {
			t.Helper()
			if got, err := st.Claim(ctx, account, n, store.NoBound, time.Now(), confirm); err != nil || len(got) != n {
				t.Fatalf("claim: %d, %v", len(got), err)
			}
		}
		acked := store.NewClaimID()
		claim(1, 4, store.Confirm{ID: acked, Expires: hour})
		if _, err := st.Ack(ctx, []int64{acked}); err != nil {
			t.Fatal(err)
		}
		claim(1, 3, store.Confirm{ID: store.NewClaimID(), Expires: hour}) // open
		claim(2, 4, store.Confirm{ID: store.NewClaimID(), Expires: hour}) // untold: not remembered
		kept(t, st, "claimed", 7)
		at := time.Date(2026, 12, 2, 6, 0, 0, 987654000, time.UTC)
		reports := append(sentReports(1, span(1, int64(len(hostile))), "Phone|1 2", at), sentReports(2, span(101, 104), "P2", at)...)
		for _, name := range []string{"recorded now", "redelivered"} {
			rec, err := st.RecordReports(ctx, reports, func(a int64) bool { return a == 1 })
			if err != nil {
				t.Fatal(err)
			}
			checkNamed(t, st, name, rec, len(hostile))
			kept(t, st, name, 0)
		}

		// Handed out again under a claim not remembered: its id and
		// attempts, not the hand-out's.
		if _, err := in.Insert(ctx, rows(1, 201, 4)); err != nil {
			t.Fatal(err)
		}
		claim(1, 4, store.Confirm{ID: store.NewClaimID(), Expires: hour})
		kept(t, st, "claimed again", 4)
		if _, err := st.DB().ExecContext(ctx, "UPDATE messages SET claim_id = claim_id + 1, attempts = attempts + 5 WHERE pos IN (201, 202)"); err != nil {
			t.Fatal(err)
		}
		rec, err := st.RecordReports(ctx, sentReports(1, span(201, 204), "P", at), nil)
		if err != nil {
			t.Fatal(err)
		}
		checkNamed(t, st, "other claim", rec, 4)
		kept(t, st, "other claim", 0)

		// Requeued by the sweep (the claim never confirmed), handed out
		// again unconfirmed (no claim id).
		if _, err := in.Insert(ctx, rows(1, 301, 2)); err != nil {
			t.Fatal(err)
		}
		soon := time.Now().Add(time.Minute)
		claim(1, 2, store.Confirm{ID: store.NewClaimID(), Expires: soon})
		if sw, err := st.Sweep(ctx, soon, 100); err != nil || sw.Requeued != 2 {
			t.Fatalf("sweep: %+v, %v", sw, err)
		}
		claim(1, 2, store.Confirm{})
		kept(t, st, "requeued", 2) // forgotten only when reported
		rec, err = st.RecordReports(ctx, sentReports(1, span(301, 302), "P", at), nil)
		if err != nil {
			t.Fatal(err)
		}
		checkNamed(t, st, "requeued", rec, 2)
		kept(t, st, "requeued", 0)

		// A redelivery of reports recorded by a call that told no one:
		// the hand-outs are still there, but the outcome stored before
		// is what the events say.
		if _, err := in.Insert(ctx, rows(1, 401, 3)); err != nil {
			t.Fatal(err)
		}
		confirmed := store.NewClaimID()
		claim(1, 3, store.Confirm{ID: confirmed, Expires: hour})
		if _, err := st.Ack(ctx, []int64{confirmed}); err != nil { // the rows stay initiated
			t.Fatal(err)
		}
		later := sentReports(1, span(401, 403), "Q", at.Add(time.Minute))
		if rec, err := st.RecordReports(ctx, later, func(int64) bool { return false }); err != nil || rec.Untold != 3 {
			t.Fatalf("untold: %+v, %v", rec, err)
		}
		kept(t, st, "untold", 3)
		rec, err = st.RecordReports(ctx, later, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkNamed(t, st, "redelivered after untold", rec, 3)
		kept(t, st, "redelivered after untold", 0)
	})
}

// Past its bound the oldest hand-outs are forgotten; their reports read
// the rows in full and name the same messages.
func TestHandOutsForgetTheOldest(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		store.RememberFewHandOuts(st, func(int64) bool { return true }, 3)
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		if _, err := in.Insert(ctx, rows(1, 1, 5)); err != nil {
			t.Fatal(err)
		}
		if got, err := st.Claim(ctx, 1, 5, store.NoBound, time.Now(), store.Confirm{ID: store.NewClaimID(), Expires: time.Now().Add(time.Hour)}); err != nil || len(got) != 5 {
			t.Fatalf("claim: %d, %v", len(got), err)
		}
		kept(t, st, "claimed", 3)
		rec, err := st.RecordReports(ctx, sentReports(1, span(1, 5), "P", time.Now().Truncate(time.Microsecond)), nil)
		if err != nil {
			t.Fatal(err)
		}
		checkNamed(t, st, "reported", rec, 5)
		kept(t, st, "reported", 0)
	})
}
