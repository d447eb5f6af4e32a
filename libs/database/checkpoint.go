package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"
	"time"

	"modernc.org/sqlite"
)

// WAL checkpoints off the commit path.
//
// SQLite's default copies the WAL back into the database file (and fsyncs
// that file) inside whichever commit takes the WAL past 1000 pages: every
// few hundred commits, one of them costs a checkpoint, and whatever waits
// on the writer's single connection waits with it. Instead a checkpointer
// goroutine with a connection of its own runs PASSIVE checkpoints every
// checkpointEvery: they copy what the WAL holds at that moment without
// taking the write lock, so commits go on meanwhile. The WAL starts again
// from its beginning when a writer begins a transaction after a checkpoint
// has copied all of it.
//
// A writer that never pauses could keep the WAL from being copied in full,
// and so from starting again; a checkpoint that waits for the writer to
// pause (RESTART) would starve, retrying between its transactions. So the
// writer keeps SQLite's own checkpoint as the bound, at walLimitBytes rather
// than 4 MiB: a commit that takes the WAL past it checkpoints on the commit
// path as before, but finds most of the WAL copied by the checkpointer
// already (only what was committed since its last run is left), and the WAL
// then starts again from its beginning.
//
// Durability is unchanged: a transaction is durable when its WAL frames are
// fsynced at commit (synchronous=FULL); checkpoints only move committed
// pages into the database file, and one that stops half-way (a crash) is
// done again from the WAL at the next open.
var (
	checkpointEvery = 250 * time.Millisecond
	walLimitBytes   = int64(64 << 20)
)

// checkpointer runs the checkpoints of one SQLite file on its own
// connection until stopped.
type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// startCheckpointer opens the checkpointing connection on path (the file
// exists and is in WAL mode: the writer has pinged it) and starts its loop.
func startCheckpointer(ctx context.Context, path string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("open sqlite checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite checkpointer: %w", err)
	}
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	ctx := context.Background()
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		// An error (SQLITE_BUSY while another process checkpoints the same
		// file) leaves the WAL as it is: the next tick tries again.
		_ = c.checkpoint(ctx)
	}
}

// checkpoint runs one PASSIVE checkpoint: it copies what it can without
// waiting for readers or the writer.
func (c *checkpointer) checkpoint(ctx context.Context) error {
	var busy, walPages, copied int64
	return c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &walPages, &copied)
}

// Close stops the loop and closes the connection; it may be called more
// than once.
func (c *checkpointer) Close() error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	return c.db.Close()
}

// closingConnector is the SQLite writer pool's connector: closing the pool
// (sql.DB.Close calls a connector's Close) stops its checkpointer.
type closingConnector struct {
	driver.Connector
	checkpointer *checkpointer
}

func (c *closingConnector) Close() error {
	if c.checkpointer == nil {
		return nil
	}
	return c.checkpointer.Close()
}

// openSQLiteWriter opens the single-connection writer pool of dsn, with
// SQLite's own checkpoint moved to walLimitBytes (in pages of pageSize, the
// file's expected page size), and its checkpointer on path.
func openSQLiteWriter(ctx context.Context, path, dsn string, pageSize int) (*sql.DB, error) {
	connector, err := sqlite.NewConnector(dsn + fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)", max(walLimitBytes/int64(pageSize), 1)))
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	cc := &closingConnector{Connector: connector}
	sqldb := sql.OpenDB(cc)
	sqldb.SetMaxOpenConns(1)
	sqldb.SetMaxIdleConns(1)
	sqldb.SetConnMaxLifetime(0)
	sqldb.SetConnMaxIdleTime(0)
	if err := ping(ctx, sqldb); err != nil { // creates the file, in WAL mode
		sqldb.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	if cc.checkpointer, err = startCheckpointer(ctx, path); err != nil {
		sqldb.Close()
		return nil, err
	}
	return sqldb, nil
}
