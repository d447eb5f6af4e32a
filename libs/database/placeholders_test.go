package database_test

import (
	"context"
	"strings"
	"testing"

	"github.com/apitosms/apitosms/libs/database"
	"github.com/apitosms/apitosms/libs/testkit"
)

func TestPlaceholdersText(t *testing.T) {
	for _, c := range []struct {
		pg       bool
		first, n int
		want     string
	}{{true, 1, 3, "$1,$2,$3"}, {true, 4, 2, "$4,$5"}, {false, 4, 2, "?,?"}, {true, 1, 0, ""}} {
		var b strings.Builder
		database.Placeholders(&b, c.pg, c.first, c.n)
		if b.String() != c.want {
			t.Errorf("Placeholders(pg=%v, %d, %d) = %q, want %q", c.pg, c.first, c.n, b.String(), c.want)
		}
	}
}

// The markers bind the arguments after the ones already in the statement,
// on both databases.
func TestPlaceholdersBind(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		db := b.DB(t, "placeholders")
		pg := database.IsPostgres(db)
		if _, err := db.DB.ExecContext(ctx, "CREATE TABLE ph_rows (k INTEGER PRIMARY KEY, g INTEGER NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = db.DB.ExecContext(context.Background(), "DROP TABLE ph_rows") })
		var ins strings.Builder
		ins.WriteString("INSERT INTO ph_rows (k, g) VALUES ")
		args := []any{}
		for i := range 4 {
			if i > 0 {
				ins.WriteByte(',')
			}
			ins.WriteByte('(')
			database.Placeholders(&ins, pg, 2*i+1, 2)
			ins.WriteByte(')')
			args = append(args, i+1, (i%2)+1)
		}
		if _, err := db.DB.ExecContext(ctx, ins.String(), args...); err != nil {
			t.Fatalf("%s: %v", ins.String(), err)
		}
		var q strings.Builder
		q.WriteString("SELECT count(*) FROM ph_rows WHERE g = ")
		database.Placeholders(&q, pg, 1, 1)
		q.WriteString(" AND k IN (")
		database.Placeholders(&q, pg, 2, 3)
		q.WriteByte(')')
		var n int
		if err := db.DB.QueryRowContext(ctx, q.String(), 1, 1, 3, 4).Scan(&n); err != nil || n != 2 {
			t.Errorf("%s: %d rows, %v; want 2 (k 1 and 3 are in group 1)", q.String(), n, err)
		}
	})
}
