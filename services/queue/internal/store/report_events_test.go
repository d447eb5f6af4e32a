package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/database"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

func finalPositions(rec store.Recorded) []int64 {
	var out []int64
	for _, t := range rec.Final {
		out = append(out, t.Pos)
	}
	slices.Sort(out)
	return out
}

// RecordReports names the messages whose outcome its reports recorded, and
// names them again when the same reports come again (a redelivered batch
// whose events were not published yet), but not for a later report
// repeating a final status at another time (a phone's retry) nor for the
// other final status.
func TestRecordReportsNamesTheirOutcomes(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		if _, err := in.Insert(ctx, rows(1, 1, 4)); err != nil {
			t.Fatal(err)
		}
		mixClaims(t, st) // 1, 2 confirmed claim; 3 open claim; 4 still new
		at := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
		reports := []store.Report{
			{AccountID: 1, Pos: 1, Status: store.StatusSent, Device: "P", At: at},
			{AccountID: 1, Pos: 2, Status: store.StatusFailed, Device: "P", At: at},
			{AccountID: 1, Pos: 3, Status: store.StatusSent, Device: "P", At: at},
			{AccountID: 1, Pos: 4, Status: store.StatusSent, Device: "P", At: at},
			{AccountID: 2, Pos: 1, Status: store.StatusSent, Device: "X", At: at}, // another account's
		}
		first, err := st.RecordReports(ctx, reports, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := finalPositions(first); !slices.Equal(got, []int64{1, 2, 3, 4}) || first.Sent != 3 || first.Failed != 1 {
			t.Fatalf("first: final %v, sent %d failed %d", got, first.Sent, first.Failed)
		}
		for _, m := range first.Final {
			if m.Device != "P" || m.FinishedAt == nil || !m.FinishedAt.Equal(at) || m.AccountID != 1 || m.Phone == "" {
				t.Fatalf("final message %+v", m)
			}
		}
		again, err := st.RecordReports(ctx, reports, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := finalPositions(again); !slices.Equal(got, []int64{1, 2, 3, 4}) || again.Sent+again.Failed != 0 || again.Changed != 0 {
			t.Fatalf("redelivery: final %v, sent %d failed %d changed %d", got, again.Sent, again.Failed, again.Changed)
		}
		looked, err := st.Lookup(ctx, 1, []int64{1, 2, 3, 4})
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(looked, func(a, b store.Tracked) int { return int(a.Pos - b.Pos) })
		slices.SortFunc(again.Final, func(a, b store.Tracked) int { return int(a.Pos - b.Pos) })
		for i := range looked {
			l, f := looked[i], again.Final[i]
			if l.Status != f.Status || l.Device != f.Device || !l.FinishedAt.Equal(*f.FinishedAt) || l.Attempts != f.Attempts || l.Text != f.Text {
				t.Fatalf("event object %+v differs from tracking's %+v", f, l)
			}
		}
		later := []store.Report{
			{AccountID: 1, Pos: 1, Status: store.StatusSent, Device: "P", At: at.Add(time.Minute)},
			{AccountID: 1, Pos: 2, Status: store.StatusSent, Device: "P", At: at},
		}
		rec, err := st.RecordReports(ctx, later, nil)
		if err != nil || len(rec.Final) != 0 {
			t.Fatalf("repeated/contrary reports: %+v, %v", rec.Final, err)
		}
	})
}

// RecordReports told of no account (none has a webhook) reads the rows
// without their tracking columns and names no message, yet records exactly
// what it records for told ones: the outcomes, the counts, the final status
// of a message still new or under an open claim (never handed out again).
// A batch with a told and an untold account names the told one's only.
func TestRecordReportsUntoldAccounts(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		if _, err := in.Insert(ctx, append(rows(1, 1, 4), rows(2, 5, 2)...)); err != nil {
			t.Fatal(err)
		}
		mixClaims(t, st) // account 1: 1, 2 confirmed claim; 3 open claim; 4 still new
		at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
		reports := []store.Report{
			{AccountID: 1, Pos: 1, Status: store.StatusSent, Device: "P", At: at},
			{AccountID: 1, Pos: 2, Status: store.StatusFailed, Device: "P", At: at},
			{AccountID: 1, Pos: 3, Status: store.StatusSent, Device: "P", At: at},
			{AccountID: 1, Pos: 4, Status: store.StatusSent, Device: "P", At: at},
			{AccountID: 1, Pos: 9, Status: store.StatusSent, Device: "P", At: at}, // not stored
		}
		none := func(int64) bool { return false }
		rec, err := st.RecordReports(ctx, reports, none)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Final) != 0 || rec.Untold != 4 || rec.Changed != 4 || rec.Missing != 1 || rec.Sent != 3 || rec.Failed != 1 {
			t.Fatalf("untold: %+v", rec)
		}
		looked, err := st.Lookup(ctx, 1, []int64{1, 2, 3, 4})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range looked {
			want := store.StatusSent
			if m.Pos == 2 {
				want = store.StatusFailed
			}
			if m.Status != want || m.Device != "P" || m.FinishedAt == nil || !m.FinishedAt.Equal(at) {
				t.Fatalf("tracked %+v", m)
			}
		}
		if got, err := st.Claim(ctx, 1, 10, store.NoBound, time.Now(), store.Confirm{}); err != nil || len(got) != 0 {
			t.Fatalf("a reported message handed out: %+v, %v", got, err)
		}
		// Redelivered, now told: the same outcomes are named, none recorded again.
		again, err := st.RecordReports(ctx, reports, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := finalPositions(again); !slices.Equal(got, []int64{1, 2, 3, 4}) || again.Changed != 0 || again.Sent+again.Failed != 0 {
			t.Fatalf("redelivery: final %v, %+v", got, again)
		}
		// Told of account 2 only.
		mixed := []store.Report{
			{AccountID: 1, Pos: 1, Status: store.StatusSent, Device: "P", At: at}, // a redelivery of account 1's
			{AccountID: 2, Pos: 5, Status: store.StatusSent, Device: "Q", At: at},
			{AccountID: 2, Pos: 6, Status: store.StatusFailed, Device: "Q", At: at},
		}
		rec, err = st.RecordReports(ctx, mixed, func(a int64) bool { return a == 2 })
		if err != nil {
			t.Fatal(err)
		}
		if got := finalPositions(rec); !slices.Equal(got, []int64{5, 6}) || rec.Untold != 0 || rec.Changed != 2 || rec.Sent != 1 || rec.Failed != 1 {
			t.Fatalf("mixed: final %v, %+v", got, rec)
		}
		for _, m := range rec.Final {
			if m.AccountID != 2 || m.Phone == "" || m.Device != "Q" {
				t.Fatalf("final message %+v", m)
			}
		}
	})
}

// mixClaims hands out account 1's first two messages under a confirmed
// claim and its third under an open one, leaving the fourth new.
func mixClaims(t *testing.T, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	id := store.NewClaimID()
	if _, err := st.Claim(ctx, 1, 2, store.NoBound, time.Now(), store.Confirm{ID: id, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Ack(ctx, []int64{id}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Claim(ctx, 1, 1, store.NoBound, time.Now(), store.Confirm{ID: store.NewClaimID(), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

// The messages RecordReports names are what tracking shows after the
// commit, field for field, whatever the texts hold: SQLite reads them
// packed (wideReportedSQLite), tracking column by column. Both the first
// reports (the outcome recorded now) and their redelivery (the outcome read
// back) are compared, over hostile phones, texts and devices, §12 fields,
// and rows never handed out, handed out under an open claim, or confirmed
// (one before hand-outs were counted).
func TestRecordReportsFinalEqualsLookup(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		hostile := hostileTexts(st)
		in := st.NewInserter()
		defer in.Close()
		if _, err := in.Insert(ctx, hostileMessages(hostile)); err != nil {
			t.Fatal(err)
		}
		mixClaims(t, st) // the high lane first: 3, 4 confirmed claim; 7 open claim; the rest new
		// 4 handed out before hand-outs were counted (tracking shows 1).
		if _, err := st.DB().ExecContext(ctx, "UPDATE messages SET attempts = 0 WHERE pos = 4"); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 12, 2, 6, 0, 0, 987654000, time.UTC)
		reports := make([]store.Report, 0, len(hostile))
		for i, s := range hostile {
			status := store.StatusSent
			if i%3 == 1 {
				status = store.StatusFailed
			}
			reports = append(reports, store.Report{AccountID: 1, Pos: int64(i + 1), Status: status, Device: s, At: at})
		}
		for round, name := range []string{"recorded now", "redelivered"} {
			rec, err := st.RecordReports(ctx, reports, nil)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			looked, err := st.Lookup(ctx, 1, finalPositions(rec))
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.Final) != len(hostile) || len(looked) != len(hostile) {
				t.Fatalf("%s: %d named, %d looked up, want %d", name, len(rec.Final), len(looked), len(hostile))
			}
			byPos := make(map[int64]store.Tracked, len(looked))
			for _, l := range looked {
				byPos[l.Pos] = l
			}
			for _, f := range rec.Final {
				l := byPos[f.Pos]
				if !sameTracked(f, l) {
					t.Fatalf("%s (round %d): named\n%+v\ntracking shows\n%+v", name, round, f, l)
				}
			}
		}
	})
}

// sameTracked compares two Tracked, times as instants.
func sameTracked(a, b store.Tracked) bool {
	sameAt := func(x, y *time.Time) bool { return x == nil && y == nil || x != nil && y != nil && x.Equal(*y) }
	return a.Pos == b.Pos && a.AccountID == b.AccountID && a.Phone == b.Phone && a.Text == b.Text && a.Status == b.Status &&
		a.AcceptedAt.Equal(b.AcceptedAt) && sameAt(a.ClaimedAt, b.ClaimedAt) && sameAt(a.FinishedAt, b.FinishedAt) &&
		a.Device == b.Device && a.Attempts == b.Attempts && a.SendAt == b.SendAt && a.ValidUntil == b.ValidUntil && a.High == b.High
}

// hostileTexts are phones, texts and devices a client or a phone may send:
// the packed reads' separators, format verbs, quotes, markup, non-ASCII,
// and on SQLite a NUL and invalid UTF-8 (PostgreSQL's text holds neither).
func hostileTexts(st *store.Store) []string {
	texts := []string{"", " ", "|", "a|b|c", "1 2 3|x|", "%d %s %%", "line\nbreak\ttab", `"quote" \back\`,
		"<b>&amp;</b>", "Grüße, Привет, 😀", "\u2028\u2029", "2026-12-02 05:06:07+00:00|"}
	if !database.IsPostgres(st.DB()) {
		texts = append(texts, "\x00nul\x00", "\xff\xfe bad \xc3")
	}
	return texts
}

// hostileMessages are new messages 1..len(texts) of account 1, each text
// its phone's suffix and its text, accepted a second apart from a fixed time
// with microseconds (PostgreSQL keeps no more); of every four, the second
// has a sendAt (due), the third a validUntil (two days from now) and high
// priority, the fourth high priority.
func hostileMessages(texts []string) []store.NewMessage {
	accepted := time.Date(2026, 12, 2, 5, 6, 7, 123456000, time.UTC)
	msgs := make([]store.NewMessage, 0, len(texts))
	for i, s := range texts {
		m := store.NewMessage{Pos: int64(i + 1), AccountID: 1, Phone: "+49" + s, Text: s, AcceptedAt: accepted.Add(time.Duration(i) * time.Second)}
		switch i % 4 {
		case 1:
			m.SendAt = accepted.Add(-time.Hour).UnixMilli()
		case 2:
			m.ValidUntil, m.High = time.Now().Add(48*time.Hour).UnixMilli(), true
		case 3:
			m.High = true
		}
		msgs = append(msgs, m)
	}
	return msgs
}
