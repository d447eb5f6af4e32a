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
// smaller WAL record, no second page). Without that room (the default fill
// factor) the same claim moves rows to other pages.
func TestClaimsStayOnTheirPagesPostgres(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		if !database.IsPostgres(st.DB()) {
			t.Skip("PostgreSQL's page layout")
		}
		ctx := context.Background()
		claim := func(t *testing.T, account int64, text string) (moved int) {
			t.Helper()
			const n = 600
			msgs := rows(account, account<<20, n)
			for i := range msgs {
				msgs[i].Text = text
			}
			if _, err := st.NewInserter().Insert(ctx, msgs); err != nil {
				t.Fatal(err)
			}
			before := messagePages(t, st, account)
			got, err := st.Claim(ctx, account, n, store.NoBound, time.Now(), store.Confirm{ID: store.NewClaimID(), Expires: time.Now().Add(time.Minute)})
			if err != nil || len(got) != n {
				t.Fatalf("claim: %d rows, %v; want %d", len(got), err, n)
			}
			after := messagePages(t, st, account)
			for pos, page := range before {
				if after[pos] != page {
					moved++
				}
			}
			return moved
		}
		// A one-segment SMS and a short one: the smaller the row, the more
		// rows and the more room their new versions need.
		for i, text := range []string{strings.Repeat("x", 160), "hello"} {
			if moved := claim(t, int64(i+1), text); moved != 0 {
				t.Fatalf("text of %d bytes: %d of 600 claimed rows left their page, want none", len(text), moved)
			}
		}
		if _, err := st.DB().ExecContext(ctx, "ALTER TABLE messages RESET (fillfactor)"); err != nil {
			t.Fatal(err)
		}
		if moved := claim(t, 3, "hello"); moved == 0 {
			t.Fatal("without the fill factor no claimed row left its page: the test no longer tells")
		}
	})
}

// messagePages returns the heap page of each of the account's messages.
func messagePages(t *testing.T, st *store.Store, account int64) map[int64]int64 {
	t.Helper()
	rows, err := st.DB().DB.QueryContext(context.Background(),
		"SELECT pos, (ctid::text::point)[0]::bigint FROM messages WHERE account_id = $1", account)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := make(map[int64]int64)
	for rows.Next() {
		var pos, page int64
		if err := rows.Scan(&pos, &page); err != nil {
			t.Fatal(err)
		}
		out[pos] = page
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
