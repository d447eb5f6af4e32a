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

// TestSQLiteCheckpointsOffTheWriter: pages committed below the WAL's bound
// reach the database file without another commit (the checkpointer copies
// them, not the writer's connection, whose own checkpoint waits for the
// bound); a writer that never pauses keeps the WAL file near its bound
// (about 24 MiB committed back to back against 1 MiB); everything committed
// is there after a reopen.
func TestSQLiteCheckpointsOffTheWriter(t *testing.T) {
	const limit = 1 << 20
	defer database.SetCheckpointing(20*time.Millisecond, limit)()
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

	// 100 pages, under the bound: only the checkpointer copies them.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for id := range 100 {
		insert(tx, id)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); size(file) < 100*4096; {
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
			insert(tx, 100+i*rowsPerTx+j)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		largest = max(largest, size(wal))
	}
	if largest > 2*limit {
		t.Errorf("WAL file reached %d bytes under a %d-byte bound", largest, limit)
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
	if err := again.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 100+txs*rowsPerTx {
		t.Errorf("rows after reopen = %d, %v; want %d", n, err, 100+txs*rowsPerTx)
	}
}
