package database_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/apitosms/apitosms/libs/database"
	"github.com/apitosms/apitosms/libs/testkit"
)

// A real write-skew between two serializable transactions on PostgreSQL:
// the first attempt fails with a serialization failure (40001), which
// IsConflict recognises; RetryConflicts runs it again and it commits.
func TestRetryConflictsRunsASerializationFailureAgain(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		if b.DatabaseURL == "" {
			t.Skip("PostgreSQL only: SQLite has one writer, no serialization failures")
		}
		ctx := context.Background()
		db := b.DB(t, "retry")
		if _, err := db.ExecContext(ctx, "CREATE TABLE retry_skew (k INT PRIMARY KEY, v INT NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = db.ExecContext(context.Background(), "DROP TABLE retry_skew") })
		if _, err := db.ExecContext(ctx, "INSERT INTO retry_skew VALUES (1, 0), (2, 0)"); err != nil {
			t.Fatal(err)
		}
		// begin opens a serializable transaction that has read the table.
		begin := func() (*sql.Tx, error) {
			tx, err := db.DB.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
			if err != nil {
				return nil, err
			}
			var sum int
			if err := tx.QueryRowContext(ctx, "SELECT sum(v) FROM retry_skew").Scan(&sum); err != nil {
				_ = tx.Rollback()
				return nil, err
			}
			return tx, nil
		}
		// other reads what the first reads and writes what it does not.
		other := func() error {
			tx, err := begin()
			if err != nil {
				return err
			}
			defer tx.Rollback() //nolint:errcheck // no-op after commit
			if _, err := tx.ExecContext(ctx, "UPDATE retry_skew SET v = v + 1 WHERE k = 1"); err != nil {
				return err
			}
			return tx.Commit()
		}
		attempts := 0
		var first error
		err := database.RetryConflicts(ctx, func() error {
			attempts++
			tx, err := begin()
			if err != nil {
				return err
			}
			defer tx.Rollback() //nolint:errcheck // no-op after commit
			if attempts == 1 {
				if err := other(); err != nil {
					t.Errorf("other transaction: %v", err)
				}
			}
			_, err = tx.ExecContext(ctx, "UPDATE retry_skew SET v = v + 1 WHERE k = 2")
			if err == nil {
				err = tx.Commit()
			}
			if attempts == 1 {
				first = err
			}
			return err
		})
		if err != nil || attempts != 2 {
			t.Fatalf("RetryConflicts = %v after %d attempts; want nil after 2", err, attempts)
		}
		if !database.IsConflict(first) {
			t.Errorf("first attempt failed with %v; want a serialization failure", first)
		}
		var sum int
		if err := db.QueryRowContext(ctx, "SELECT sum(v) FROM retry_skew").Scan(&sum); err != nil || sum != 2 {
			t.Errorf("sum = %d, %v; want both updates (2)", sum, err)
		}
	})
}

// Only conflicts are retried, and not forever.
func TestRetryConflictsStops(t *testing.T) {
	ctx := context.Background()
	plain := errors.New("plain")
	n := 0
	if err := database.RetryConflicts(ctx, func() error { n++; return plain }); !errors.Is(err, plain) || n != 1 {
		t.Errorf("plain error: %v after %d runs; want it after 1", err, n)
	}
	if database.IsConflict(plain) || database.IsConflict(nil) {
		t.Error("IsConflict of a plain error or nil")
	}
	deadlock := &pgconn.PgError{Code: "40P01"}
	n = 0
	err := database.RetryConflicts(ctx, func() error { n++; return deadlock })
	if !database.IsConflict(err) || n != 5 {
		t.Errorf("lasting deadlock: %v after %d runs; want it after 5", err, n)
	}
}
