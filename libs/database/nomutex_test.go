package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
)

// connHasMutex reports whether the SQLite connection the pool of db hands
// out next has SQLite's per-connection mutex.
func connHasMutex(t *testing.T, db *sql.DB) bool {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var has bool
	if err := conn.Raw(func(dc any) error {
		h, err := sqliteHandle(dc)
		if err != nil {
			return err
		}
		has = h.Fmutex != 0
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return has
}

func TestSQLiteConnectionsHaveNoMutex(t *testing.T) {
	ctx := context.Background()
	cfg := Config{DataDir: t.TempDir(), Service: "svc"}
	// The control: the driver's own registration opens FULLMUTEX, so the
	// check below can see a mutex when there is one.
	plain, err := sql.Open("sqlite", "file:"+t.TempDir()+"/plain.db")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if !connHasMutex(t, plain) {
		t.Fatal("a connection of the driver's own registration has no mutex: the check cannot see one")
	}
	db, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if connHasMutex(t, db.DB) {
		t.Error("Open's connection has SQLite's per-connection mutex")
	}
	reader, err := OpenReader(ctx, cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if connHasMutex(t, reader.DB) {
		t.Error("OpenReader's connection has SQLite's per-connection mutex")
	}
}

// TestSQLiteNoMutexConcurrentPool runs writers on Open's connection and
// readers on an OpenReader pool from many goroutines at once, some of their
// calls cancelled mid-statement (the driver interrupts SQLite from another
// goroutine), and checks that every committed row is there exactly once and
// the file is sound. Run it with -race.
func TestSQLiteNoMutexConcurrentPool(t *testing.T) {
	ctx := context.Background()
	cfg := Config{DataDir: t.TempDir(), Service: "svc"}
	db, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE rows (id INTEGER PRIMARY KEY, writer INTEGER, n INTEGER,
		a TEXT, b TEXT, c INTEGER, d REAL, UNIQUE (writer, n))`); err != nil {
		t.Fatal(err)
	}
	reader, err := OpenReader(ctx, cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()

	const writers, readers, batches, perBatch = 4, 4, 25, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)
	for w := range writers {
		wg.Go(func() {
			for batch := range batches {
				if err := writeBatch(ctx, db, w, batch*perBatch, perBatch); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	var readWG sync.WaitGroup
	for r := range readers {
		readWG.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				if err := readWide(ctx, reader, r+i); err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readWG.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	var count, distinct int
	if err := db.QueryRowContext(ctx, "SELECT count(*), count(DISTINCT writer || '/' || n) FROM rows").
		Scan(&count, &distinct); err != nil {
		t.Fatal(err)
	}
	if want := writers * batches * perBatch; count != want || distinct != want {
		t.Errorf("rows %d, distinct %d, want %d of each", count, distinct, want)
	}
	var check string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check %q, %v", check, err)
	}
}

// writeBatch inserts n rows of writer from first in one transaction, reading
// them back by RETURNING; a first attempt is cancelled mid-transaction, and
// must leave nothing behind.
func writeBatch(ctx context.Context, db *bun.DB, writer, first, n int) error {
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := insertRows(cancelled, db, writer, first, n); err == nil {
		return errors.New("a cancelled transaction committed")
	}
	return insertRows(ctx, db, writer, first, n)
}

func insertRows(ctx context.Context, db *bun.DB, writer, first, n int) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var sb strings.Builder
		args := make([]any, 0, 2*n)
		for i := range n {
			if i > 0 {
				sb.WriteString(",")
			}
			sb.WriteString("(?, ?, 'text ' || ?2, 'ünïcödé', 42, 0.5)")
			args = append(args, writer, first+i)
		}
		rows, err := tx.QueryContext(ctx, "INSERT INTO rows (writer, n, a, b, c, d) VALUES "+
			strings.ReplaceAll(sb.String(), "?2", "?")+" RETURNING id, writer, n, a, b, c, d", dup(args)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		got := 0
		for rows.Next() {
			var id, w, num, c int64
			var a, b string
			var d float64
			if err := rows.Scan(&id, &w, &num, &a, &b, &c, &d); err != nil {
				return err
			}
			if w != int64(writer) || a != fmt.Sprint("text ", num) || b != "ünïcödé" || c != 42 || d != 0.5 {
				return fmt.Errorf("row %d read back as %d %d %q %q %d %v", id, w, num, a, b, c, d)
			}
			got++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("RETURNING gave %d rows, want %d", got, n)
		}
		return nil
	})
}

// dup repeats each (writer, n) pair's n for the text column's third
// placeholder.
func dup(pairs []any) []any {
	out := make([]any, 0, len(pairs)/2*3)
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, pairs[i], pairs[i+1], pairs[i+1])
	}
	return out
}

// readWide reads every row, wide; every third read is cut short by a
// deadline that lands while SQLite runs, which must end in an error or a
// whole read, never a wrong row, and leave the connection usable.
func readWide(ctx context.Context, db *bun.DB, i int) error {
	if i%3 == 0 {
		short, cancel := context.WithTimeout(ctx, time.Duration(i%5)*100*time.Microsecond)
		defer cancel()
		ctx = short
	}
	rows, err := db.QueryContext(ctx, "SELECT id, writer, n, a, b, c, d FROM rows ORDER BY writer, n")
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, w, num, c int64
		var a, b string
		var d float64
		if err := rows.Scan(&id, &w, &num, &a, &b, &c, &d); err != nil {
			if ctx.Err() != nil {
				return nil // closed by the deadline between Next and Scan
			}
			return err
		}
		if a != fmt.Sprint("text ", num) || b != "ünïcödé" || c != 42 || d != 0.5 {
			return fmt.Errorf("row %d read as %d %d %q %q %d %v", id, w, num, a, b, c, d)
		}
	}
	if err := rows.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// SQLiteDSN is sqliteDSN for the external tests (BenchmarkSQLiteWideRead).
var SQLiteDSN = sqliteDSN
