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
	tx, err := s.db.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin ingest: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck
	for start := 0; start < len(rows); start += chunkRows {
		if err := s.insert(ctx, tx, rows[start:min(start+chunkRows, len(rows))]); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit ingest: %w", err)
	}
	return nil
}

func byPos(a, b Row) int { return cmp.Compare(a.Pos, b.Pos) }

// insert adds rows with one multi-row statement.
func (s *Store) insert(ctx context.Context, tx *sql.Tx, rows []Row) error {
	var q strings.Builder
	q.Grow(64 + len(rows)*16)
	q.WriteString("INSERT INTO deliveries (pos, account_id) VALUES ")
	args := make([]any, 0, 2*len(rows))
	for i, r := range rows {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteByte('(')
		database.Placeholders(&q, s.pg, len(args)+1, 2)
		q.WriteByte(')')
		args = append(args, r.Pos, r.AccountID)
	}
	q.WriteString(" ON CONFLICT DO NOTHING")
	if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("insert deliveries: %w", err)
	}
	return nil
}
