package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Row is one accepted message to record with status 0.
type Row struct {
	Hash      string
	Pos       int64
	AccountID int64
}

// Replacement tells that the message at Pos is stored under Hash because its
// accepted hash Original belonged to another message already.
type Replacement struct {
	Original string
	Hash     string
	Pos      int64
}

// chunkRows bounds the rows of one INSERT: 3 bind variables a row stays far
// below SQLite's 32766 (and PostgreSQL's 65535).
const chunkRows = 4000

// maxReplacements bounds the replacement chain of one message; reaching it
// would take repeated SHA-256 collisions.
const maxReplacements = 32

// Ingest records rows in one transaction. It is idempotent: a row whose
// position is already present is left alone, so a redelivered event changes
// nothing. A row whose hash is taken by another position is stored under
// ReplacementHash (repeated while that collides too) and reported in the
// result.
func (s *Store) Ingest(ctx context.Context, rows []Row) ([]Replacement, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	tx, err := s.db.DB.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin ingest: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck
	// Inserting in key order walks the hash B-tree once instead of jumping
	// around it. Of two rows with one hash the lower position still comes
	// first, so the earlier message keeps the hash, as in stream order.
	rows = slices.Clone(rows)
	slices.SortFunc(rows, func(a, b Row) int {
		return cmp.Or(strings.Compare(a.Hash, b.Hash), cmp.Compare(a.Pos, b.Pos))
	})
	var replaced []Replacement
	for start := 0; start < len(rows); start += chunkRows {
		chunk := rows[start:min(start+chunkRows, len(rows))]
		n, err := s.insert(ctx, tx, chunk)
		if err != nil {
			return nil, err
		}
		if n == len(chunk) {
			continue
		}
		// Some rows were skipped: either already there (redelivery) or
		// their hash is taken (collision). Only the second needs work.
		missing, err := s.missing(ctx, tx, chunk)
		if err != nil {
			return nil, err
		}
		for _, r := range missing {
			hash, err := s.replace(ctx, tx, r)
			if err != nil {
				return nil, err
			}
			replaced = append(replaced, Replacement{Original: r.Hash, Hash: hash, Pos: r.Pos})
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit ingest: %w", err)
	}
	return replaced, nil
}

// insert adds rows with one multi-row statement and returns how many were new.
func (s *Store) insert(ctx context.Context, tx *sql.Tx, rows []Row) (int, error) {
	var q strings.Builder
	q.Grow(64 + len(rows)*24)
	q.WriteString("INSERT INTO deliveries (hash, pos, account_id) VALUES ")
	args := make([]any, 0, 3*len(rows))
	for i, r := range rows {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteByte('(')
		s.params(&q, len(args), 3)
		q.WriteByte(')')
		args = append(args, r.Hash, r.Pos, r.AccountID)
	}
	q.WriteString(" ON CONFLICT DO NOTHING")
	res, err := tx.ExecContext(ctx, q.String(), args...)
	if err != nil {
		return 0, fmt.Errorf("insert deliveries: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("insert deliveries: %w", err)
	}
	return int(n), nil
}

// missing returns the rows whose position is absent from the table.
func (s *Store) missing(ctx context.Context, tx *sql.Tx, rows []Row) ([]Row, error) {
	var q strings.Builder
	q.WriteString("SELECT pos FROM deliveries WHERE pos IN (")
	args := make([]any, len(rows))
	for i, r := range rows {
		args[i] = r.Pos
	}
	s.params(&q, 0, len(rows))
	q.WriteByte(')')
	res, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("select positions: %w", err)
	}
	defer res.Close()
	present := make(map[int64]bool, len(rows))
	for res.Next() {
		var pos int64
		if err := res.Scan(&pos); err != nil {
			return nil, fmt.Errorf("select positions: %w", err)
		}
		present[pos] = true
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("select positions: %w", err)
	}
	var out []Row
	for _, r := range rows {
		if !present[r.Pos] {
			out = append(out, r)
			present[r.Pos] = true // a position listed twice is one message
		}
	}
	return out, nil
}

// replace stores r under its replacement hash, following the chain while the
// replacement is taken too, and returns the hash used.
func (s *Store) replace(ctx context.Context, tx *sql.Tx, r Row) (string, error) {
	var q strings.Builder
	q.WriteString("INSERT INTO deliveries (hash, pos, account_id) VALUES (")
	s.params(&q, 0, 3)
	q.WriteString(") ON CONFLICT DO NOTHING")
	hash := r.Hash
	for range maxReplacements {
		hash = ReplacementHash(hash, r.Pos)
		res, err := tx.ExecContext(ctx, q.String(), hash, r.Pos, r.AccountID)
		if err != nil {
			return "", fmt.Errorf("insert replacement: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return "", fmt.Errorf("insert replacement: %w", err)
		} else if n == 1 {
			return hash, nil
		}
		// A concurrent redelivery may have stored the position meanwhile.
		if stored, err := s.hashAt(ctx, tx, r.Pos); err != nil {
			return "", err
		} else if stored != "" {
			return stored, nil
		}
	}
	return "", fmt.Errorf("no free replacement hash for position %d", r.Pos)
}

// hashAt returns the hash stored at pos, or "" if none.
func (s *Store) hashAt(ctx context.Context, tx *sql.Tx, pos int64) (string, error) {
	var q strings.Builder
	q.WriteString("SELECT hash FROM deliveries WHERE pos = ")
	s.params(&q, 0, 1)
	var hash string
	err := tx.QueryRowContext(ctx, q.String(), pos).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("select position: %w", err)
	}
	return hash, nil
}

// params writes n comma-separated bind placeholders numbered after the first
// `before` ones, in the dialect's syntax.
func (s *Store) params(q *strings.Builder, before, n int) {
	for i := range n {
		if i > 0 {
			q.WriteByte(',')
		}
		if s.pg {
			q.WriteByte('$')
			q.WriteString(strconv.Itoa(before + i + 1))
		} else {
			q.WriteByte('?')
		}
	}
}
