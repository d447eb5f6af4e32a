package database_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/apitosms/apitosms/libs/database"
	"github.com/apitosms/apitosms/libs/testkit"
)

// BenchmarkSQLiteWideRead reads 1000 rows of 17 columns through the
// driver's own registration (every connection FULLMUTEX: each column call
// enters and leaves the connection's mutex twice) and through Open's
// (no per-connection mutex), in one process, one after the other.
func BenchmarkSQLiteWideRead(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	db, err := database.Open(ctx, database.Config{DataDir: dir, Service: "wide"})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cols := make([]string, 17)
	for i := range cols {
		cols[i] = fmt.Sprintf("c%d", i)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE wide (id INTEGER PRIMARY KEY, "+strings.Join(cols, ", ")+")"); err != nil {
		b.Fatal(err)
	}
	vals := make([]string, 17)
	for i := range vals {
		if i%2 == 0 {
			vals[i] = fmt.Sprintf("value + %d", i*1000000)
		} else {
			vals[i] = fmt.Sprintf("'text of column %d ' || value", i)
		}
	}
	if _, err := db.ExecContext(ctx, "WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value+1 FROM s WHERE value < 1000) "+
		"INSERT INTO wide ("+strings.Join(cols, ", ")+") SELECT "+strings.Join(vals, ", ")+" FROM s"); err != nil {
		b.Fatal(err)
	}
	query := "SELECT id, " + strings.Join(cols, ", ") + " FROM wide" //nolint:gosec // G202: column names of our own
	// The same DSN through the driver's own registration: its flags, its mutex.
	plain, err := sql.Open("sqlite", database.SQLiteDSN(dir+"/wide.db", "wide"))
	if err != nil {
		b.Fatal(err)
	}
	defer plain.Close()
	plain.SetMaxOpenConns(1)
	for _, bc := range []struct {
		name string
		db   *sql.DB
	}{{"fullmutex", plain}, {"nomutex", db.DB}} {
		b.Run(bc.name, func(b *testing.B) {
			var id int64
			var ints [9]int64
			var texts [8]sql.RawBytes
			dest := []any{&id}
			for j := range 17 { // c0, c2, ...: integers; c1, c3, ...: texts
				if j%2 == 0 {
					dest = append(dest, &ints[j/2])
				} else {
					dest = append(dest, &texts[j/2])
				}
			}
			b.ReportAllocs()
			before := testkit.ProcessCPU()
			for b.Loop() {
				rows, err := bc.db.QueryContext(ctx, query)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for rows.Next() {
					if err := rows.Scan(dest...); err != nil {
						b.Fatal(err)
					}
					n++
				}
				if err := rows.Close(); err != nil || n != 1000 {
					b.Fatal(n, err)
				}
			}
			b.ReportMetric(float64((testkit.ProcessCPU()-before).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
