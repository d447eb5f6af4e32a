package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/apitosms/apitosms/libs/database"
)

// Row is one accepted message to record with status 0.
type Row struct {
	Pos       int64 // FIFO position (events.Position): the message's key
	AccountID int64
}

// chunkRows bounds the rows of one INSERT: 2 bind variables a row stays far
// below SQLite's 32766 (and PostgreSQL's 65535).
const chunkRows = 8000

// Ingest records rows in one transaction. It is idempotent: a row whose
// position is already present is left alone, so a redelivered event changes
// nothing.
func (s *Store) Ingest(ctx context.Context, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	// Positions only grow: rows in order append to the end of the table.
	if !slices.IsSortedFunc(rows, byPos) {
		rows = slices.Clone(rows)
		slices.SortFunc(rows, byPos)
	}
	if s.stmts != nil {
		// SQLite: statements prepared once (prepared.go).
		if err := s.stmts.prepare(ctx, s.db.DB); err != nil {
			return err
		}
	}
	tx, err := s.db.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin ingest: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck
	if s.stmts != nil {
		if err := s.stmts.ingestPrepared(ctx, tx, rows); err != nil {
			return err
		}
	} else {
		for start := 0; start < len(rows); start += chunkRows {
			if err := s.insert(ctx, tx, rows[start:min(start+chunkRows, len(rows))]); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit ingest: %w", err)
	}
	return nil
}

func byPos(a, b Row) int { return cmp.Compare(a.Pos, b.Pos) }

// insertSQL is the insert of n rows, skipping positions already present.
func insertSQL(pg bool, n int) string {
	var q strings.Builder
	q.Grow(64 + n*16)
	q.WriteString("INSERT INTO deliveries (pos, account_id) VALUES ")
	for i := range n {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteByte('(')
		database.Placeholders(&q, pg, 2*i+1, 2)
		q.WriteByte(')')
	}
	q.WriteString(" ON CONFLICT DO NOTHING")
	return q.String()
}

// insert adds rows with one multi-row statement.
func (s *Store) insert(ctx context.Context, tx *sql.Tx, rows []Row) error {
	args := make([]any, 0, 2*len(rows))
	for _, r := range rows {
		args = append(args, r.Pos, r.AccountID)
	}
	if _, err := tx.ExecContext(ctx, insertSQL(s.pg, len(rows)), args...); err != nil {
		return fmt.Errorf("insert deliveries: %w", err)
	}
	return nil
}
