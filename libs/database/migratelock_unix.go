//go:build unix

package database

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/uptrace/bun"
)

// lockSQLiteMigrations serialises the migrations of processes sharing one
// SQLite file (replicas on one machine starting together): without it, two
// see a migration as not applied and the second fails with "table already
// exists". The lock is an flock on a file next to the database, which the
// kernel releases if the process dies. An in-memory database needs none.
func lockSQLiteMigrations(ctx context.Context, db *bun.DB, service string) (unlock func(), err error) {
	var file string
	if err := db.NewRaw("SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(ctx, &file); err != nil {
		return nil, fmt.Errorf("migration lock of %s: %w", service, err)
	}
	if file == "" {
		return func() {}, nil
	}
	// The path is the database's own, next to it; nothing a request chose.
	f, err := os.OpenFile(file+".migrate-lock", os.O_CREATE|os.O_RDWR, 0o600) //nolint:gosec // G304: see above
	if err != nil {
		return nil, fmt.Errorf("migration lock of %s: %w", service, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close() // a lock file we only locked: nothing was written
			return nil, fmt.Errorf("migration lock of %s: %w", service, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close() // as above
			return nil, fmt.Errorf("migration lock of %s: %w", service, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
