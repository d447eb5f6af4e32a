package testkit

import (
	"context"
	"database/sql"
	"testing"
)

// HeapPages returns the PostgreSQL heap page of each row query selects,
// keyed by its position: query's first column is the position, the rows'
// page is read from their ctid (`SELECT pos, (ctid::text::point)[0]::bigint
// FROM … WHERE …`). Tests of fill factors use it to see whether an update
// kept a row on its page.
func HeapPages(t testing.TB, db *sql.DB, query string, args ...any) map[int64]int64 {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), query, args...)
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
