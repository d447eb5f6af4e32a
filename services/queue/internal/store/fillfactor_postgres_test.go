package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/database"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// On PostgreSQL the messages table keeps room on every page (its fill
// factor) so that a claim of all of a page's rows, as a claim of a run of
// positions is, writes each claimed version on its row's own page (a
// smaller WAL record, no second page). The migration applies to a table
// already holding messages: those keep their packed pages (their claimed
// versions move) and their FIFO place.
func TestClaimsStayOnTheirPagesPostgres(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		if !database.IsPostgres(st.DB()) {
			t.Skip("PostgreSQL's page layout")
		}
		ctx := context.Background()
		// A database from before the fill factor, already holding messages:
		// account 3's, packed, some of them handed out.
		if _, err := st.DB().ExecContext(ctx, "ALTER TABLE messages RESET (fillfactor)"); err != nil {
			t.Fatal(err)
		}
		const n = 600
		insert := func(t *testing.T, account int64, text string) {
			t.Helper()
			msgs := rows(account, account<<20, n)
			for i := range msgs {
				msgs[i].Text = text
			}
			if _, err := st.NewInserter().Insert(ctx, msgs); err != nil {
				t.Fatal(err)
			}
		}
		claim := func(t *testing.T, account int64, limit int) (moved int) {
			t.Helper()
			before := messagePages(t, st, account)
			got, err := st.Claim(ctx, account, limit, store.NoBound, time.Now(), store.Confirm{ID: store.NewClaimID(), Expires: time.Now().Add(time.Minute)})
			if err != nil || len(got) != limit {
				t.Fatalf("claim: %d rows, %v; want %d", len(got), err, limit)
			}
			// FIFO: the claim takes the oldest waiting ones.
			waiting := 0
			if err := st.DB().DB.QueryRowContext(ctx, "SELECT count(*) FROM messages WHERE account_id = $1 AND status = 0 AND pos < $2",
				account, got[len(got)-1].Pos).Scan(&waiting); err != nil || waiting != 0 {
				t.Fatalf("after the claim %d older messages still wait (%v)", waiting, err)
			}
			after := messagePages(t, st, account)
			for _, m := range got {
				if after[m.Pos] != before[m.Pos] {
					moved++
				}
			}
			return moved
		}
		insert(t, 3, "hello")
		claim(t, 3, 100)
		// The upgrade, on that table.
		sqlText, err := store.Migrations.ReadFile("migrations/postgres/20261202100000_messages_fillfactor.up.sql")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.DB().DB.ExecContext(ctx, string(sqlText)); err != nil {
			t.Fatal(err)
		}
		// New rows get the room: a one-segment SMS and a short one (the
		// smaller the row, the more rows and the more room their new
		// versions need).
		for account, text := range map[int64]string{1: strings.Repeat("x", 160), 2: "hello"} {
			insert(t, account, text)
			if moved := claim(t, account, n); moved != 0 {
				t.Fatalf("text of %d bytes: %d of %d claimed rows left their page, want none", len(text), moved, n)
			}
		}
		// Rows stored before keep their packed pages and their FIFO place:
		// claimed now, they move (what the room is for).
		if moved := claim(t, 3, n-100); moved == 0 {
			t.Fatal("on packed pages no claimed row left its page: the test no longer tells")
		}
	})
}

// messagePages returns the heap page of each of the account's messages.
func messagePages(t *testing.T, st *store.Store, account int64) map[int64]int64 {
	t.Helper()
	return testkit.HeapPages(t, st.DB().DB,
		"SELECT pos, (ctid::text::point)[0]::bigint FROM messages WHERE account_id = $1", account)
}
