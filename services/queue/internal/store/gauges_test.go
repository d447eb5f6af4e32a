package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// Backlog counts waiting and initiated (not reported) messages and the
// oldest waiting one; from the floor it returns it finds the same counts.
func TestBacklog(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		if bl, err := st.Backlog(ctx, 0); err != nil || bl.Waiting != 0 || bl.Initiated != 0 || !bl.OldestAt.IsZero() {
			t.Fatalf("empty backlog %+v, %v", bl, err)
		}
		if _, err := in.Insert(ctx, rows(1, 1, 6)); err != nil {
			t.Fatal(err)
		}
		if _, err := in.Insert(ctx, rows(2, 7, 4)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Claim(ctx, 1, 4, store.NoBound, time.Now(), store.Confirm{}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.ApplyReports(ctx, []store.Report{{AccountID: 1, Pos: 1, Status: store.StatusSent, At: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		bl, err := st.Backlog(ctx, 0)
		if err != nil || bl.Waiting != 6 || bl.Initiated != 3 || bl.OldestAt.IsZero() || time.Since(bl.OldestAt) > time.Hour {
			t.Fatalf("backlog %+v, %v; want 6 waiting, 3 initiated", bl, err)
		}
		if bl.Floor() != 2 {
			t.Fatalf("floor %d, want 2 (oldest initiated)", bl.Floor())
		}
		again, err := st.Backlog(ctx, bl.Floor())
		if err != nil || again.Waiting != 6 || again.Initiated != 3 {
			t.Fatalf("from the floor %+v, %v", again, err)
		}
	})
}

// The waiting count reads the claim index (only new messages), never the
// whole table.
func TestBacklogUsesClaimIndexSQLite(t *testing.T) {
	st := open(t, testkit.Embedded(t))
	r, err := st.DB().DB.Query("EXPLAIN QUERY PLAN SELECT COUNT(*), MIN(pos) FROM messages WHERE status = 0")
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
	if len(plan) != 1 || !strings.Contains(plan[0], "messages_claim_idx") {
		t.Fatalf("waiting count plan %q", plan)
	}
}
