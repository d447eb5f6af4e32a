package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"time"

	"modernc.org/sqlite"
)

// WAL checkpoints mostly off the commit path.
//
// SQLite's default copies the WAL back into the database file (and fsyncs
// that file) inside whichever commit takes the WAL past 1000 pages: every
// few hundred commits one of them costs a whole checkpoint, and whatever
// waits on the writer's single connection waits with it. Instead a
// checkpointer goroutine watches how many pages the WAL holds that no
// checkpoint has copied yet (read every checkpointEvery from the file's
// wal-index, the -shm file, without a query) and once they are
// walResetPages or more runs a PASSIVE checkpoint on a connection of its
// own: it copies what the WAL holds at that moment without taking the write
// lock, so commits go on meanwhile.
//
// The WAL starts again from its beginning (written over in place, instead
// of growing the file: appending makes each commit's fsync also write the
// file's size) only when a transaction begins after a checkpoint copied all
// of it, which a copy running beside a busy writer rarely does. So when
// pages were committed during the first checkpoint, the checkpointer takes the writer's
// own connection from its pool (waiting its turn like any writer) and runs
// a second PASSIVE checkpoint there: it copies only what was committed
// since the first, and with no write under way it copies everything, so the
// next transaction starts the WAL again. Writers wait for that short copy
// only, not for the whole checkpoint.
//
// The writer's own automatic checkpoint stays as a bound, at walLimitBytes,
// for when the checkpointer cannot keep up or a reader holds old pages.
//
// Durability is unchanged: a transaction is durable when its WAL frames are
// fsynced at commit (synchronous=FULL); checkpoints only move committed
// pages into the database file, and one that stops half-way (a crash) is
// done again from the WAL at the next open.
var (
	checkpointEvery = 50 * time.Millisecond
	walResetPages   = int64(1000) // SQLite's default automatic checkpoint
	walLimitBytes   = int64(64 << 20)
)

// checkpointer runs the checkpoints of one SQLite file until stopped.
type checkpointer struct {
	db     *sql.DB  // its own connection
	writer *sql.DB  // the writer's pool, for the short second checkpoint
	shm    *os.File // the wal-index; nil: checkpoint at every tick
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// startCheckpointer opens the checkpointing connection on path (the file
// exists and is in WAL mode: the writer has pinged it) and starts its loop.
func startCheckpointer(ctx context.Context, path string, writer *sql.DB) (*checkpointer, error) {
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
	c := &checkpointer{db: db, writer: writer, stop: make(chan struct{}), done: make(chan struct{})}
	if shm, err := os.Open(path + "-shm"); err == nil { //nolint:gosec // the data dir's own file, read only
		c.shm = shm
	}
	go c.run(context.WithoutCancel(ctx)) // runs until Close, past Open's ctx
	return c, nil
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		if c.uncopied() < walResetPages {
			continue
		}
		// An error (SQLITE_BUSY while another process checkpoints the same
		// file, the writer's pool closed) leaves the WAL as it is: the next
		// tick tries again, or the loop stops.
		if err := checkpoint(ctx, c.db); err == nil && c.uncopied() > 0 {
			_ = checkpoint(ctx, c.writer)
		}
	}
}

// uncopied returns how many of the WAL's pages no checkpoint has copied
// yet, from the wal-index header (https://www.sqlite.org/walformat.html:
// mxFrame at byte 16, nBackfill at byte 96, native byte order). A read
// that races a writer's update may be off, which only moves one
// checkpoint by a tick; without the wal-index every tick checkpoints.
func (c *checkpointer) uncopied() int64 {
	if c.shm == nil {
		return walResetPages
	}
	var hdr [100]byte
	if _, err := c.shm.ReadAt(hdr[:], 0); err != nil {
		return walResetPages
	}
	return int64(binary.NativeEndian.Uint32(hdr[16:])) - int64(binary.NativeEndian.Uint32(hdr[96:]))
}

// checkpoint runs one PASSIVE checkpoint on a connection of db: it copies
// what it can without waiting for readers or a writer.
func checkpoint(ctx context.Context, db *sql.DB) error {
	var busy, walPages, copied int64
	return db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &walPages, &copied)
}

// Close stops the loop and closes the connection; it may be called more
// than once.
func (c *checkpointer) Close() error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	if c.shm != nil {
		_ = c.shm.Close()
	}
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
// SQLite's own automatic checkpoint moved to walLimitBytes (in pages of
// pageSize, the file's expected page size), and its checkpointer on path.
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
	if cc.checkpointer, err = startCheckpointer(ctx, path, sqldb); err != nil {
		sqldb.Close()
		return nil, err
	}
	return sqldb, nil
}
