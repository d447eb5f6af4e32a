package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/database"
)

// finalFrom is the lowest final status: statuses below it may still change.
const finalFrom = 2

// Queries are the report operations, run together in one transaction
// (Store.InTx).
type Queries struct {
	db bun.IDB
	pg bool
	// The transaction, for the statements with bound arguments: those
	// prepared on SQLite's connection (prepared.go, stmts; nil on
	// PostgreSQL) and PostgreSQL's fixed texts (postgres.go).
	tx    *sql.Tx
	stmts *sqliteStmts
}

// InTx runs fn in one transaction: its statements share one commit (one
// fsync). An error from fn rolls everything back; when it is a PostgreSQL
// deadlock or serialization failure (two replicas touching the same rows in
// different orders), fn runs again in a new transaction, a few times, so fn
// must be re-runnable.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context, q *Queries) error) error {
	if s.stmts != nil {
		if err := s.stmts.prepare(ctx, s.db.DB); err != nil {
			return err
		}
	}
	return database.RetryConflicts(ctx, func() error {
		return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			q := &Queries{db: tx, pg: s.pg, tx: tx.Tx, stmts: s.stmts}
			return fn(ctx, q)
		})
	})
}

// MarkFinal sets status, device and reportedAt on those of the account's
// messages at positions whose status is not final yet, in one statement, and
// returns the positions it changed. A message already final, another
// account's message or an unknown position is left alone and not returned.
// Of two concurrent calls for the same message exactly one changes it.
func (q *Queries) MarkFinal(ctx context.Context, accountID int64, positions []int64, status int, device string, reportedAt time.Time) ([]int64, error) {
	if len(positions) == 0 {
		return nil, nil
	}
	mark := q.markFinalPostgresTx
	if q.stmts != nil {
		mark = q.markFinalPrepared
	}
	changed, err := mark(ctx, accountID, positions, status, device, reportedAt)
	if err != nil {
		// A failed statement aborts the transaction: InTx retries the whole.
		return nil, fmt.Errorf("mark final: %w", err)
	}
	return changed, nil
}

// Statuses returns the status of each of the account's messages among
// positions; positions unknown or of another account are absent from the map.
func (q *Queries) Statuses(ctx context.Context, accountID int64, positions []int64) (map[int64]int, error) {
	out := make(map[int64]int, len(positions))
	if len(positions) == 0 {
		return out, nil
	}
	var rows *sql.Rows
	var err error
	if q.stmts != nil {
		rows, err = q.tx.StmtContext(ctx, q.stmts.statuses).QueryContext(ctx, accountID, database.JSONInts(positions))
	} else {
		rows, err = q.tx.QueryContext(ctx, statusesPostgres, accountID, positions)
	}
	if err != nil {
		return nil, fmt.Errorf("select statuses: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var pos int64
		var st int
		if err := rows.Scan(&pos, &st); err != nil {
			return nil, fmt.Errorf("select statuses: %w", err)
		}
		out[pos] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select statuses: %w", err)
	}
	return out, nil
}
