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
		out[i] = store.NewMessage{Pos: pos, AccountID: account, Hash: hex16(pos),
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
		res, err := in.Insert(ctx, rows(1, 1, n))
		if err != nil || res.Inserted != n || len(res.Collisions) != 0 {
			t.Fatalf("insert = %+v, %v; want %d inserted", res, err, n)
		}
		res, err = in.Insert(ctx, rows(1, 1, n))
		if err != nil || res.Inserted != 0 || len(res.Collisions) != 0 {
			t.Fatalf("re-insert = %+v, %v; want nothing inserted", res, err)
		}
		got, err := st.Claim(ctx, 1, 200, store.NoBound, time.Now())
		if err != nil || len(got) != 200 || got[0].Pos != 1 || got[199].Pos != 200 {
			t.Fatalf("claim after insert: %d rows, err %v; want positions 1..200", len(got), err)
		}
	})
}

// The claim statement finds the account's oldest new messages through the
// partial claim index (no scan, no sort) and updates them by primary key.
func TestClaimUsesIndexSQLite(t *testing.T) {
	st := open(t, testkit.Embedded(t))
	var plan []string
	r, err := st.DB().DB.Query("EXPLAIN QUERY PLAN "+store.ClaimSQLite, time.Now(), 1, store.NoBound, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		var id, parent, unused int
		var detail string
		if err := r.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	want := []string{
		"SEARCH messages USING INTEGER PRIMARY KEY (rowid=?)",
		"LIST SUBQUERY 1",
		"SEARCH messages USING COVERING INDEX messages_claim_idx (account_id=? AND pos<?)",
	}
	if !slices.Equal(plan, want) {
		t.Fatalf("claim plan %q, want %q", plan, want)
	}
}

// Applying reports finds the reported rows through the primary key (by
// position) or the hash index, never by scanning the account's pending
// messages (cost must not grow with the backlog).
func TestReportsUseKeysSQLite(t *testing.T) {
	st := open(t, testkit.Embedded(t))
	for _, c := range []struct {
		column string
		keys   []any
		want   string
	}{
		{"pos", []any{int64(1025), int64(1026)}, "USING INTEGER PRIMARY KEY (rowid=?)"},
		{"hash", []any{"a1b2c3d4e5f67890", "a1b2c3d4e5f67891"}, "(hash=?)"},
	} {
		r, err := st.DB().DB.Query("EXPLAIN QUERY PLAN "+st.ReportSQL(c.column, 2), append([]any{2, 1}, c.keys...)...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for r.Next() {
			var id, parent, unused int
			var detail string
			if err := r.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		r.Close()
		if len(plan) != 1 || !strings.Contains(plan[0], c.want) {
			t.Errorf("report plan by %s %q, want a search %s", c.column, plan, c.want)
		}
	}
}
