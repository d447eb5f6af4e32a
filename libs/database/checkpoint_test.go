package database_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/database"
	"github.com/uptrace/bun"
)

// TestSQLiteCheckpointsOffTheWriter: pages committed past the checkpointer's
// size but below the writer's own bound reach the database file without
// another commit (the checkpointer copies them, not the writer's
// connection, whose automatic checkpoint waits for 64 MiB); a writer that never pauses keeps the WAL file near the
// checkpointer's reset size (about 24 MiB committed back to back, a reset
// at 256 pages, 1 MiB: the WAL starts again rather than growing); everything
// committed is there after a reopen.
func TestSQLiteCheckpointsOffTheWriter(t *testing.T) {
	const limit, reset = 64 << 20, 256
	defer database.SetCheckpointing(20*time.Millisecond, reset, limit)()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := database.Config{DataDir: dir, Service: "svc"}
	db, err := database.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var auto int
	if err := db.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != limit/4096 {
		t.Fatalf("writer's wal_autocheckpoint = %d, %v; want %d", auto, err, limit/4096)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)"); err != nil {
		t.Fatal(err)
	}
	wal, file := filepath.Join(dir, "svc.db-wal"), filepath.Join(dir, "svc.db")
	size := func(path string) int64 {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	body := strings.Repeat("x", 4000) // about a page a row
	insert := func(tx bun.Tx, id int) {
		t.Helper()
		if _, err := tx.ExecContext(ctx, "INSERT INTO t (id, body) VALUES (?, ?)", id, body); err != nil {
			t.Fatal(err)
		}
	}

	// 300 pages, between the two sizes: only the checkpointer copies them.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for id := range 300 {
		insert(tx, id)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); size(file) < 300*4096; {
		if time.Now().After(deadline) {
			t.Fatalf("database file holds %d bytes 10 s after the commit: the WAL was not checkpointed", size(file))
		}
		time.Sleep(10 * time.Millisecond)
	}

	const txs, rowsPerTx = 400, 16 // 6,400 pages
	var largest int64
	for i := range txs {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for j := range rowsPerTx {
			insert(tx, 300+i*rowsPerTx+j)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		largest = max(largest, size(wal))
	}
	if largest > 4*reset*4096 {
		t.Errorf("WAL file reached %d bytes; want it started again at about %d", largest, reset*4096)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := database.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	var n int
	if err := again.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 300+txs*rowsPerTx {
		t.Errorf("rows after reopen = %d, %v; want %d", n, err, 300+txs*rowsPerTx)
	}
}
