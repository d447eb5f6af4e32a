package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

func open(t testing.TB, b testkit.Backend) *store.Store {
	t.Helper()
	st := store.New(b.DB(t, store.Service))
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

// rows returns n messages of account at positions from..from+n-1.
func rows(account, from int64, n int) []store.NewMessage {
	out := make([]store.NewMessage, n)
	now := time.Now()
	for i := range out {
		pos := from + int64(i)
		out[i] = store.NewMessage{Pos: pos, AccountID: account,
			Phone: "+15550000000", Text: "hello", AcceptedAt: now}
	}
	return out
}

// One Insert larger than a statement's bind-variable budget spans several
// statements in one transaction; inserting it again adds nothing.
func TestInsertChunksAndIsIdempotent(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		in := st.NewInserter()
		const n = 12000 // more than two chunks
		inserted, err := in.Insert(ctx, rows(1, 1, n))
		if err != nil || inserted != n {
			t.Fatalf("insert = %d, %v; want %d inserted", inserted, err, n)
		}
		inserted, err = in.Insert(ctx, rows(1, 1, n))
		if err != nil || inserted != 0 {
			t.Fatalf("re-insert = %d, %v; want nothing inserted", inserted, err)
		}
		got, err := st.Claim(ctx, 1, 200, store.NoBound, time.Now(), store.Confirm{})
		if err != nil || len(got) != 200 || got[0].Pos != 1 || got[199].Pos != 200 {
			t.Fatalf("claim after insert: %d rows, err %v; want positions 1..200", len(got), err)
		}
	})
}

// The claim statement finds the account's oldest new messages through the
// partial claim index (no scan of the backlog) and updates them by primary key.
func TestClaimUsesIndexSQLite(t *testing.T) {
	st := open(t, testkit.Embedded(t))
	plan := queryPlan(t, st, store.ClaimSQLite, time.Now(), 7, 1, store.NoBound, time.Now().UnixMilli(), 10)
	// One range scan of the claim index per lane (the position bound is
	// part of the seek, so a bounded claim never walks the backlog beyond
	// it), in index order: no sort, no read of the table.
	want := []string{
		"SEARCH messages USING INTEGER PRIMARY KEY (rowid=?)",
		"LIST SUBQUERY 1",
		"SEARCH messages USING COVERING INDEX messages_claim_idx (account_id=? AND lane=? AND pos<?)",
	}
	if !slices.Equal(plan, want) {
		t.Fatalf("claim plan %q, want %q", plan, want)
	}
}

// queryPlan is SQLite's EXPLAIN QUERY PLAN of q: the details, in order.
func queryPlan(t *testing.T, st *store.Store, q string, args ...any) []string {
	t.Helper()
	r, err := st.DB().DB.Query("EXPLAIN QUERY PLAN "+q, args...)
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
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// Applying reports finds the reported rows through the primary key, never
// by scanning the account's pending messages (cost must not grow with the
// backlog).
func TestReportsUsePrimaryKeySQLite(t *testing.T) {
	st := open(t, testkit.Embedded(t))
	for name, q := range store.ReportStatementsSQLite {
		args := []any{"[1025,1026]"}
		if name == "final" {
			args = []any{2, 1, "[1025,1026]"}
		}
		plan := queryPlan(t, st, q, args...)
		// messages (m) searched by the primary key for each position of
		// the list, which is json_each's scan; outcomes (o) by theirs.
		joined := strings.Join(plan, "; ") + " "
		t.Logf("%s: %s", name, joined)
		if !strings.Contains(joined, "USING INTEGER PRIMARY KEY (rowid=?)") || strings.Contains(joined, "SCAN messages") ||
			strings.Contains(joined, "SCAN m ") || strings.Contains(joined, "SCAN o ") || strings.Contains(joined, "USING INDEX") || strings.Contains(joined, "COVERING INDEX") {
			t.Fatalf("%s: plan %q, want a search on the primary key", name, plan)
		}
	}
}
