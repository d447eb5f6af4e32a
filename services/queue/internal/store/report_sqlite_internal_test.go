package store

import (
	"context"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
)

// parseReportTime reads what time.Parse reads from our SQLite layout and
// the driver's (a bound time.Time), and hands anything else to asTime.
func TestParseReportTime(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2026, 12, 2, 5, 6, 7, 0, time.UTC),
		time.Date(2026, 12, 2, 5, 6, 7, 123456789, time.UTC),
		time.Date(2026, 1, 31, 23, 59, 59, 100000000, time.UTC),
		time.Date(2024, 2, 29, 0, 0, 0, 1000, time.UTC),
		time.Date(1999, 12, 31, 12, 0, 0, 999999999, time.FixedZone("x", 2*3600)),
	} {
		for _, text := range []string{at.UTC().Format(sqliteTimeLayout), at.UTC().String()} {
			got, err := parseReportTime(text)
			if err != nil || !got.Equal(at) || got.Location() != time.UTC {
				t.Fatalf("%q: got %v (%v), want %v", text, got, err, at)
			}
		}
	}
	for _, text := range []string{
		"2026-12-02 05:06:07+02:00", "2026-12-02T05:06:07Z", "2026-12-02 05:06:07", "2026-12-02 05:06:07.5+00:00",
		"2026-11-31 05:06:07+00:00", "2026-12-02 25:06:07+00:00", "2026-12-02 05:06:07.+00:00", "2026-12-02 05:06:07.1234567890+00:00",
		"2026-12-0x 05:06:07+00:00", "2026-12-02 05:06:07.25 +0200 X",
	} {
		got, err := parseReportTime(text)
		want, werr := asTime(text)
		if (err == nil) != (werr == nil) || err == nil && !got.Equal(want) {
			t.Fatalf("%q: got %v (%v), want %v (%v)", text, got, err, want, werr)
		}
	}
	if _, err := parseReportTime(int64(1)); err == nil {
		t.Fatal("an integer read as a time")
	}
}

// The narrow report read on SQLite (narrowReportedSQLite, its integers
// packed into one text) finds exactly what readReportedSQL's plain columns
// find, open claims included once markOpen has run, for rows in every
// state: each status from scheduled to cancelled and statuses no message
// has, no claim, an open, a closed and an unknown claim, the largest and
// smallest integers SQLite holds, negative values, accounts on either side
// of the shared column's bound; a position with no row is in neither.
func TestNarrowReportedEqualsPlainRead(t *testing.T) {
	ctx := context.Background()
	s := New(testkit.Embedded(t).DB(t, Service))
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const open, closed = int64(8_000_000_000_000_000_001), int64(4_000_000_000_000_000_003)
	type row struct {
		pos, account int64
		status       int
		claim        any // nil: NULL
		open         bool
	}
	want := []row{
		{1, 7, StatusNew, nil, false},
		{2, 7, StatusInitiated, open, true},
		{3, 7, StatusInitiated, closed, false},
		{4, 7, StatusInitiated, nil, false},
		{5, 7, StatusScheduled, nil, false},
		{6, 7, StatusSent, int64(math.MaxInt64 - 1), false},
		{7, 7, StatusFailed, open, false},
		{8, 7, StatusExpired, int64(-9), false},
		{9, -3, StatusCancelled, int64(12345), false},
		{10, 0, StatusNew, int64(0), false},
		{math.MaxInt64, math.MaxInt64, StatusInitiated, int64(math.MinInt64), false},
		{math.MinInt64, math.MinInt64, StatusInitiated, open, true},
		{-77, 1 << 40, StatusSent, int64(-1), false},
		{14, 1<<60 - 1, StatusInitiated, open, true},
		{15, 1 << 60, StatusInitiated, open, true},
		{16, 7, 6, int64(99), false},
		{17, 7, 7, int64(98), false},
		{18, 7, -2, int64(97), false},
		{19, 7, math.MinInt32, nil, false},
	}
	in := s.NewInserter()
	defer in.Close()
	msgs := make([]NewMessage, len(want))
	for i := range want {
		msgs[i] = NewMessage{Pos: int64(i + 1), AccountID: 7, Phone: "+15550000000", Text: "hello", AcceptedAt: time.Now()}
	}
	if _, err := in.Insert(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	// Set each row's state (and position) in place.
	for i := len(want) - 1; i >= 0; i-- {
		w := want[i]
		if _, err := s.sqlDB().ExecContext(ctx, "UPDATE messages SET pos = ?, account_id = ?, status = ?, claim_id = ? WHERE pos = ?",
			w.pos, w.account, w.status, w.claim, i+1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.sqlDB().ExecContext(ctx, "INSERT INTO claims (id, account_id, expires_ms, positions) VALUES (?, 7, ?, x'')",
		open, time.Now().Add(time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	positions := []any{int64(424242)} // no row
	for _, w := range want {
		positions = append(positions, w.pos)
	}

	stmts, err := s.reportStatements(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := s.sqlDB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	packed, plain := map[int64]*reportedRow{}, map[int64]*reportedRow{}
	if err := s.readReported(ctx, tx, stmts, positions, packed, false); err != nil {
		t.Fatal(err)
	}
	if err := markOpen(ctx, tx, stmts, packed); err != nil {
		t.Fatal(err)
	}
	if err := s.readReported(ctx, tx, nil, positions, plain, false); err != nil {
		t.Fatal(err)
	}
	if len(packed) != len(want) || len(plain) != len(want) {
		t.Fatalf("read %d packed and %d plain rows, want %d", len(packed), len(plain), len(want))
	}
	for _, w := range want {
		claim, _ := w.claim.(int64)
		expect := reportedRow{account: w.account, status: w.status, claim: claim, open: w.open, tracked: Tracked{Pos: w.pos}}
		for name, got := range map[string]*reportedRow{"packed": packed[w.pos], "plain": plain[w.pos]} {
			if got == nil || !reflect.DeepEqual(*got, expect) {
				t.Errorf("%s read of %d: %+v, want %+v", name, w.pos, got, expect)
			}
		}
	}
}

// cutInts reads integers separated by single spaces, each within int64,
// and refuses anything else.
func TestCutInts(t *testing.T) {
	var n [4]int64
	rest, err := cutInts("-9223372036854775808 9223372036854775807 -1 0|x", n[:], '|')
	if err != nil || rest != "x" || n != [4]int64{math.MinInt64, math.MaxInt64, -1, 0} {
		t.Fatalf("got %v, rest %q, %v", n, rest, err)
	}
	if rest, err = cutInts("1 22 333 4444", n[:], 0); err != nil || rest != "" || n != [4]int64{1, 22, 333, 4444} {
		t.Fatalf("got %v, rest %q, %v", n, rest, err)
	}
	for _, bad := range []string{"", "1 2 3", "1 2 3 4 5", "1  2 3 4", "1 2 3 4 ", " 1 2 3 4", "a 2 3 4", "1 2 3 9223372036854775808", "1 2 3 4.5"} {
		if _, err := cutInts(bad, n[:], 0); err == nil {
			t.Errorf("%q: read as %v", bad, n)
		}
	}
}
