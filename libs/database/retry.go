package database

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// conflictRetries bounds the runs of RetryConflicts.
const conflictRetries = 5

// IsConflict reports whether err is a PostgreSQL deadlock (40P01) or
// serialization failure (40001): the transaction failed only because of
// another one and may simply run again.
func IsConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// RetryConflicts runs fn (a whole transaction) and runs it again, up to 5
// times in all with a short growing pause (5, 10, 15, 20 ms), while it fails
// with a conflict (IsConflict). It returns nil, fn's first other error, the
// last conflict wrapped as "after retries", or that conflict at once when
// ctx ends.
func RetryConflicts(ctx context.Context, fn func() error) error {
	var err error
	for attempt := range conflictRetries {
		if err = fn(); err == nil || !IsConflict(err) {
			return err
		}
		if attempt == conflictRetries-1 {
			break
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	return fmt.Errorf("after retries: %w", err)
}
