package groupcommit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/groupcommit"
	"github.com/apitosms/apitosms/libs/testkit"
)

// row is a job that inserts key into the table and learns how many rows the
// table then holds (what it saw of the jobs before it).
type row struct {
	key  string
	seen int
	err  error
	done int // times Done was called
}

// sharedTx returns the SharedTx of row jobs on db's table, counting the
// transactions it begins.
func sharedTx(db *bun.DB, table string, txs *int, before func(ctx context.Context, tx bun.Tx) error) groupcommit.SharedTx[*row, bun.Tx] {
	return groupcommit.SharedTx[*row, bun.Tx]{
		InTx: func(ctx context.Context, fn func(context.Context, bun.Tx) error) error {
			*txs++
			return db.RunInTx(ctx, nil, fn)
		},
		Run: func(ctx context.Context, tx bun.Tx, j *row) error {
			if _, err := tx.ExecContext(ctx, "INSERT INTO "+table+" (k) VALUES (?)", j.key); err != nil {
				return err
			}
			return tx.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&j.seen)
		},
		Done: func(j *row, err error) {
			j.done++
			if j.err = err; err != nil {
				j.seen = 0
			}
		},
		Before: before,
	}
}

func keys(t *testing.T, db *bun.DB, table string) []string {
	t.Helper()
	var ks []string
	if err := db.NewRaw("SELECT k FROM "+table+" ORDER BY k").Scan(context.Background(), &ks); err != nil {
		t.Fatal(err)
	}
	return ks
}

// A failing job makes the others commit each alone, with exactly what they
// would have seen alone in that order; the group's Before is dropped.
func TestSharedTxFallsBackToEachAlone(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		db := b.DB(t, "groupcommit")
		table, marks := "gc_"+b.Namespace, "gcm_"+b.Namespace
		for _, tb := range []string{table, marks} {
			if _, err := db.ExecContext(ctx, "CREATE TABLE "+tb+" (k TEXT PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = db.ExecContext(context.Background(), "DROP TABLE "+tb) })
		}
		before := func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO "+marks+" (k) VALUES ('group')")
			return err
		}

		// All good: one transaction, each job sees those before it.
		txs := 0
		ok := []*row{{key: "a"}, {key: "b"}}
		if err := sharedTx(db, table, &txs, before).Commit(ctx, ok); err != nil {
			t.Fatal(err)
		}
		if txs != 1 || ok[0].seen != 1 || ok[1].seen != 2 || ok[0].err != nil || ok[1].err != nil {
			t.Fatalf("shared: %d transactions, jobs %+v %+v", txs, *ok[0], *ok[1])
		}

		// "a" again violates the primary key: the shared transaction fails,
		// then each runs alone; "c" and "d" commit as if "a" never came.
		txs = 0
		group := []*row{{key: "c"}, {key: "a"}, {key: "d"}}
		shared := sharedTx(db, table, &txs, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.ExecContext(ctx, "DELETE FROM "+marks)
			return err
		})
		if err := shared.Commit(ctx, group); err == nil {
			t.Fatal("shared transaction with a duplicate key: want its error")
		}
		if txs != 1+len(group) {
			t.Errorf("transactions = %d, want the shared one and one per job (%d)", txs, 1+len(group))
		}
		c, a, d := group[0], group[1], group[2]
		if c.err != nil || c.seen != 3 || d.err != nil || d.seen != 4 {
			t.Errorf("jobs alone: c %+v, d %+v; want seen 3 and 4, no error", *c, *d)
		}
		if a.err == nil || a.seen != 0 {
			t.Errorf("failing job: %+v; want its error and no output", *a)
		}
		for _, j := range group {
			if j.done != 1 {
				t.Errorf("job %s: Done called %d times", j.key, j.done)
			}
		}
		if got := keys(t, db, table); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
			t.Errorf("rows = %v", got)
		}
		// Before ran in the shared transaction only, and was rolled back with it.
		if got := keys(t, db, marks); !slices.Equal(got, []string{"group"}) {
			t.Errorf("marks = %v; want the first group's, kept", got)
		}

		// A group of one is not run twice: it gets the shared error.
		txs = 0
		one := []*row{{key: "b"}}
		err := sharedTx(db, table, &txs, nil).Commit(ctx, one)
		if err == nil || !errors.Is(one[0].err, err) || txs != 1 || one[0].done != 1 {
			t.Errorf("group of one: err %v, job %+v, %d transactions", err, *one[0], txs)
		}
	})
}

// A failing Before fails the shared transaction; every job still commits
// alone.
func TestSharedTxBeforeFailure(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		db := b.DB(t, "groupcommit")
		table := "gcb_" + b.Namespace
		if _, err := db.ExecContext(ctx, "CREATE TABLE "+table+" (k TEXT PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = db.ExecContext(context.Background(), "DROP TABLE "+table) })
		errBefore := fmt.Errorf("before failed")
		txs := 0
		group := []*row{{key: "x"}, {key: "y"}}
		err := sharedTx(db, table, &txs, func(context.Context, bun.Tx) error { return errBefore }).Commit(ctx, group)
		if !errors.Is(err, errBefore) {
			t.Fatalf("Commit = %v, want the Before error", err)
		}
		if group[0].err != nil || group[0].seen != 1 || group[1].err != nil || group[1].seen != 2 {
			t.Errorf("jobs alone: %+v %+v", *group[0], *group[1])
		}
		if got := keys(t, db, table); !slices.Equal(got, []string{"x", "y"}) {
			t.Errorf("rows = %v", got)
		}
	})
}
