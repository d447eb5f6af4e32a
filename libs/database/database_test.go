package database_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/apitosms/apitosms/libs/database"
	"github.com/apitosms/apitosms/libs/testkit"
)

func TestOpenSQLite(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	db, err := database.Open(ctx, database.Config{DataDir: dir, Service: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := os.Stat(filepath.Join(dir, "svc.db")); err != nil {
		t.Errorf("database file: %v", err)
	}
	if database.IsPostgres(db) {
		t.Error("IsPostgres on SQLite")
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var sync, fk int
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Errorf("synchronous = %d, %v; want 2 (FULL)", sync, err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}
	if s := db.Stats(); s.MaxOpenConnections != 1 {
		t.Errorf("max open connections = %d, want 1", s.MaxOpenConnections)
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	ctx := context.Background()
	if _, err := database.Open(ctx, database.Config{DataDir: t.TempDir()}); err == nil {
		t.Error("no service name: want error")
	}
	if _, err := database.Open(ctx, database.Config{URL: "mysql://x", Service: "svc"}); err == nil {
		t.Error("mysql URL: want error")
	}
}

func TestOpenPostgres(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		if b.DatabaseURL == "" {
			t.Skip("PostgreSQL only")
		}
		db := b.DB(t, "svc")
		if !database.IsPostgres(db) {
			t.Error("IsPostgres = false on PostgreSQL")
		}
		var one int
		if err := db.QueryRowContext(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Errorf("SELECT 1 = %d, %v", one, err)
		}
	})
}

// migrations has two migrations per dialect; the second has two statements.
var migrations = fstest.MapFS{
	"migrations/sqlite/20260101000001_init.up.sql": {Data: []byte(
		"CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n")},
	"migrations/sqlite/20260101000002_seed.up.sql": {Data: []byte(
		"INSERT INTO things (name) VALUES ('a');\n--bun:split\nCREATE INDEX things_name ON things (name);\n")},
	"migrations/postgres/20260101000001_init.up.sql": {Data: []byte(
		"CREATE TABLE things (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL);\n")},
	"migrations/postgres/20260101000002_seed.up.sql": {Data: []byte(
		"INSERT INTO things (name) VALUES ('a');\n--bun:split\nCREATE INDEX things_name ON things (name);\n")},
}

func TestMigrateOnceAndIdempotent(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		db := b.DB(t, "svc")
		for i := range 2 {
			if err := database.Migrate(ctx, db, migrations, "svc"); err != nil {
				t.Fatalf("Migrate #%d: %v", i+1, err)
			}
		}
		var things, applied int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM things").Scan(&things); err != nil || things != 1 {
			t.Errorf("things rows = %d, %v; want 1 (seed applied once)", things, err)
		}
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM svc_migrations").Scan(&applied); err != nil || applied != 2 {
			t.Errorf("svc_migrations rows = %d, %v; want 2", applied, err)
		}
	})
}

// Replicas starting together migrate once: PostgreSQL's advisory lock, and
// on SQLite (replicas sharing a data dir) the file lock next to the database.
func TestMigrateConcurrent(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		const replicas = 4
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		for i := range replicas {
			db := b.DB(t, "svc") // one pool per replica, as separate processes would have
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = database.Migrate(ctx, db, migrations, "svc")
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		}
		var things int
		db := b.DB(t, "svc")
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM things").Scan(&things); err != nil || things != 1 {
			t.Errorf("things rows = %d, %v; want 1", things, err)
		}
	})
}

// TestSQLitePragmasSurviveReconnect: the connection settings are in the DSN,
// so a connection the pool opens after losing one has them too.
func TestSQLitePragmasSurviveReconnect(t *testing.T) {
	ctx := context.Background()
	db, err := database.Open(ctx, database.Config{DataDir: t.TempDir(), Service: "webhooks"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check := func(when string) {
		t.Helper()
		var cache, temp int
		if err := db.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil || cache != -8192 {
			t.Errorf("%s: cache_size = %d, %v; want -8192", when, cache, err)
		}
		if err := db.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&temp); err != nil || temp != 2 {
			t.Errorf("%s: temp_store = %d, %v; want 2 (MEMORY)", when, temp, err)
		}
	}
	check("first connection")
	// Change a setting on the pool's only connection, then have the pool
	// drop it (driver.ErrBadConn closes it): the next query opens a fresh one.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA cache_size = -1"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Raw(func(any) error { return driver.ErrBadConn }); !errors.Is(err, driver.ErrBadConn) {
		t.Fatalf("Raw = %v", err)
	}
	_ = conn.Close()
	check("fresh connection")

	// A service without its own size keeps SQLite's default (-2000).
	other, err := database.Open(ctx, database.Config{DataDir: t.TempDir(), Service: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var cache int
	if err := other.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil || cache != -2000 {
		t.Errorf("billing cache_size = %d, %v; want -2000", cache, err)
	}
}

// TestSQLitePageSizeForNewFilesOnly: webhooks.db is created with its larger
// page size, in WAL mode, and keeps it when opened again; a webhooks.db that
// already exists with another page size keeps that one and still works; other
// services keep SQLite's default.
func TestSQLitePageSizeForNewFilesOnly(t *testing.T) {
	ctx := context.Background()
	pageSize := func(t *testing.T, dir, service string) int {
		t.Helper()
		db, err := database.Open(ctx, database.Config{DataDir: dir, Service: service})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS t (x text)"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES ('a')"); err != nil {
			t.Fatal(err)
		}
		var size int
		var mode string
		if err := db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&size); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q, %v; want wal", mode, err)
		}
		return size
	}
	dir := t.TempDir()
	if got := pageSize(t, dir, "webhooks"); got != 16384 {
		t.Errorf("new webhooks.db: page_size = %d, want 16384", got)
	}
	if got := pageSize(t, dir, "webhooks"); got != 16384 {
		t.Errorf("webhooks.db opened again: page_size = %d, want 16384", got)
	}
	if got := pageSize(t, t.TempDir(), "billing"); got != 4096 {
		t.Errorf("billing.db: page_size = %d, want 4096", got)
	}

	// A webhooks.db made before the option (SQLite's default page size).
	old := t.TempDir()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(old, "webhooks.db")+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, "CREATE TABLE t (x text)"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if got := pageSize(t, old, "webhooks"); got != 4096 {
		t.Errorf("existing webhooks.db: page_size = %d, want its own 4096", got)
	}
}
