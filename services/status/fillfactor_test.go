package status_test

import (
	"context"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/status/internal/store"
)

// On PostgreSQL the deliveries table keeps room on every page (its fill
// factor) so that reporting a page's rows, all in one transaction as a
// phone's report does, leaves each new version on its row's own page: a
// HOT update, with no new primary-key entry. Without that room (the
// table's default fill factor) the same report moves rows to other pages.
func TestReportsStayOnTheirPagesPostgres(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		db := b.DB(t, "status")
		st := store.New(db)
		if !st.Postgres() {
			t.Skip("PostgreSQL's page layout")
		}
		ctx := context.Background()
		if err := store.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		// Pages filled as the fill factor allows, then reported in one go;
		// positions per account as an accepted batch lays them out.
		report := func(t *testing.T, first int64) (moved int) {
			t.Helper()
			const n = 600
			rows := make([]store.Row, n)
			positions := make([]int64, n)
			for i := range rows {
				rows[i] = store.Row{Pos: first + int64(i), AccountID: 7}
				positions[i] = rows[i].Pos
			}
			if err := st.Ingest(ctx, rows); err != nil {
				t.Fatal(err)
			}
			before := pages(t, db, first, first+n)
			err := st.InTx(ctx, func(ctx context.Context, q *store.Queries) error {
				changed, err := q.MarkFinal(ctx, 7, positions, 2, "Pixel 7 of Anna", time.Now())
				if err == nil && len(changed) != n {
					t.Errorf("changed %d rows, want %d", len(changed), n)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			after := pages(t, db, first, first+n)
			for pos, page := range before {
				if after[pos] != page {
					moved++
				}
			}
			return moved
		}
		if moved := report(t, 1<<20); moved != 0 {
			t.Fatalf("%d of 600 reported rows left their page, want none", moved)
		}
		// The same on a table without the room: rows move (what the fill
		// factor is for).
		if _, err := db.ExecContext(ctx, "ALTER TABLE deliveries RESET (fillfactor)"); err != nil {
			t.Fatal(err)
		}
		if moved := report(t, 2<<20); moved == 0 {
			t.Fatal("without the fill factor no reported row left its page: the test no longer tells")
		}
	})
}

// pages returns the heap page of each row at positions [from, to).
func pages(t *testing.T, db *bun.DB, from, to int64) map[int64]int64 {
	t.Helper()
	return testkit.HeapPages(t, db.DB,
		"SELECT pos, (ctid::text::point)[0]::bigint FROM deliveries WHERE pos >= $1 AND pos < $2", from, to)
}
