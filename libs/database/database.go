// Package database opens a service's bun database: PostgreSQL when a
// postgres:// URL is configured, otherwise a SQLite file in the data dir. It
// is the one switch point between the two, and applies a service's embedded
// migrations at start.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/migrate"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Config selects the database of one service.
type Config struct {
	URL     string // postgres://...; empty means SQLite
	DataDir string // SQLite file is DataDir/<Service>.db
	Service string // owner of the tables; names the SQLite file and migration tables
}

// sqliteCacheKiB is the SQLite page cache of the services that want more
// than SQLite's 2 MiB default. queue and status: 4 MiB; 16 MiB was tried and
// raised the process's peak RSS by about 50 MiB under ingest (dirty pages of
// large transactions fill it) with no drain gain beyond this machine's
// noise; the OS page cache serves the rest. webhooks: 8 MiB holds a burst of
// undelivered events so claims and deletes find their pages without reading
// them back.
var sqliteCacheKiB = map[string]int{"queue": 4 << 10, "status": 4 << 10, "webhooks": 8 << 10}

// sqlitePageSize is the page size of the services whose SQLite file is
// created with more than SQLite's 4 KiB default. webhooks: its rows carry
// event payloads (a chunk of 200 events is about 70 KB), written to the WAL
// one page frame (one pwrite) at a time and copied again at each
// checkpoint; larger pages mean fewer system calls for the same bytes (see
// docs/benchmarks.md, 2026-12-02 session 4). A page size is fixed once the
// file exists (in WAL mode even VACUUM cannot change it), so only a new file
// gets it: an existing one keeps its own, and works as before.
var sqlitePageSize = map[string]int{"webhooks": 16 << 10}

// Open opens the database described by cfg.
//
// SQLite runs in WAL mode with synchronous=FULL (a committed transaction is
// on disk) through a single connection: SQLite has one writer anyway, and one
// connection means no SQLITE_BUSY. Each service has its own file, so services
// never wait on each other's writes. Every connection setting is a _pragma
// of the DSN, so a connection the pool opens again has them all: statement
// journals (multi-row INSERT ... ON CONFLICT in a transaction) in memory
// (temp_store), and the page cache of sqliteCacheKiB.
func Open(ctx context.Context, cfg Config) (*bun.DB, error) {
	if cfg.Service == "" {
		return nil, errors.New("database: service name required")
	}
	var db *bun.DB
	switch {
	case strings.HasPrefix(cfg.URL, "postgres://"), strings.HasPrefix(cfg.URL, "postgresql://"):
		sqldb, err := sql.Open("pgx", cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		sqldb.SetMaxOpenConns(16)
		sqldb.SetMaxIdleConns(16)
		sqldb.SetConnMaxIdleTime(5 * time.Minute)
		db = bun.NewDB(sqldb, pgdialect.New())
	case cfg.URL == "":
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		path := filepath.Join(cfg.DataDir, cfg.Service+".db")
		if size := sqlitePageSize[cfg.Service]; size > 0 {
			if err := createSQLite(ctx, path, size); err != nil {
				return nil, err
			}
		}
		dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
			"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)" +
			"&_txlock=immediate"
		if kib := sqliteCacheKiB[cfg.Service]; kib > 0 {
			dsn += fmt.Sprintf("&_pragma=cache_size(-%d)", kib)
		}
		sqldb, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		sqldb.SetMaxOpenConns(1)
		sqldb.SetMaxIdleConns(1)
		sqldb.SetConnMaxLifetime(0)
		sqldb.SetConnMaxIdleTime(0)
		db = bun.NewDB(sqldb, sqlitedialect.New())
	default:
		return nil, errors.New("database URL must start with postgres://")
	}
	if err := ping(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return db, nil
}

// busyWait bounds how long ping waits out SQLITE_BUSY: the DSN's
// busy_timeout.
const busyWait = 10 * time.Second

// ping checks the first connection. Turning a new SQLite file to WAL mode
// (the DSN's first pragma that writes) can answer SQLITE_BUSY at once,
// without SQLite's busy handler, when processes sharing a data dir open the
// file together at their first start; ping tries again for up to busyWait.
func ping(ctx context.Context, db *bun.DB) error {
	deadline := time.Now().Add(busyWait)
	for pause := 5 * time.Millisecond; ; pause = min(2*pause, 200*time.Millisecond) {
		err := db.PingContext(ctx)
		var coded interface{ Code() int } // modernc.org/sqlite errors
		if err == nil || !errors.As(err, &coded) || coded.Code()&0xff != 5 || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

// createSQLite creates the SQLite file at path with the given page size,
// in WAL mode, if there is no file there yet. The driver runs a DSN's
// pragmas in alphabetical order, journal_mode before page_size, and turning
// on WAL writes the file's first page: so the page size is set on a
// connection of its own, before anything else. Should two processes create
// the file at once, SQLite's locks let one write the first page; the
// other's page_size then changes nothing.
func createSQLite(ctx context.Context, path string, pageSize int) error {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return err // the file exists (nil), or cannot be looked at
	}
	sqldb, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("create sqlite: %w", err)
	}
	defer sqldb.Close()
	conn, err := sqldb.Conn(ctx) // both pragmas on one connection
	if err != nil {
		return fmt.Errorf("create sqlite: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA page_size = %d", pageSize)); err != nil {
		return fmt.Errorf("sqlite page size: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA journal_mode = WAL"); err != nil {
		return fmt.Errorf("create sqlite: %w", err)
	}
	return nil
}

// OpenReader opens a second, read-only pool of conns connections on the
// SQLite database of cfg (cfg.URL must be empty: PostgreSQL pools already
// read concurrently), for hot lookups that must not queue behind writes. The
// writer's single connection is busy for the whole of each commit (fsync
// included), while WAL lets readers run meanwhile, each seeing every
// transaction committed before it began. Open the writer (Open, Migrate)
// first.
func OpenReader(ctx context.Context, cfg Config, conns int) (*bun.DB, error) {
	if cfg.URL != "" {
		return nil, errors.New("OpenReader: a read-only pool is for SQLite only")
	}
	path := filepath.Join(cfg.DataDir, cfg.Service+".db")
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=query_only(1)"
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite reader: %w", err)
	}
	sqldb.SetMaxOpenConns(conns)
	sqldb.SetMaxIdleConns(conns)
	db := bun.NewDB(sqldb, sqlitedialect.New())
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("ping sqlite reader: %w", err)
	}
	return db, nil
}

// IsPostgres reports whether db talks to PostgreSQL.
func IsPostgres(db *bun.DB) bool { return db.Dialect().Name() == dialect.PG }

// Migrate applies the SQL migrations found in migrations/<dialect> of fsys
// ("sqlite" or "postgres"), recording them in <service>_migrations. On
// PostgreSQL an advisory lock serialises replicas starting together, on
// SQLite a file lock next to the database.
func Migrate(ctx context.Context, db *bun.DB, fsys fs.FS, service string) error {
	dir := "migrations/sqlite"
	if IsPostgres(db) {
		dir = "migrations/postgres"
	}
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		return fmt.Errorf("migrations of %s: %w", service, err)
	}
	migrations := migrate.NewMigrations()
	if err := migrations.Discover(sub); err != nil {
		return fmt.Errorf("discover migrations of %s: %w", service, err)
	}
	if IsPostgres(db) {
		conn, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		key := lockKey(service)
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", key); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", key) //nolint:errcheck
	} else {
		unlock, err := lockSQLiteMigrations(ctx, db, service)
		if err != nil {
			return err
		}
		defer unlock()
	}
	m := migrate.NewMigrator(db, migrations,
		migrate.WithTableName(service+"_migrations"),
		migrate.WithLocksTableName(service+"_migration_locks"),
		migrate.WithMarkAppliedOnSuccess(true),
	)
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("init migrations of %s: %w", service, err)
	}
	if _, err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", service, err)
	}
	return nil
}

func lockKey(service string) int64 {
	h := fnv.New64a()
	h.Write([]byte("apitosms-migrate-" + service))
	return int64(h.Sum64() >> 1)
}
