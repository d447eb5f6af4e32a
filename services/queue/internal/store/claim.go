package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"time"
)

// Claimed is a message handed out by Claim.
type Claimed struct {
	Pos   int64
	Phone string
	Text  string
}

// NoBound is the maxPos of a claim that may take any position.
const NoBound = math.MaxInt64

// Claim marks up to limit of the account's oldest new messages at positions
// up to maxPos initiated and returns them oldest first, in one statement
// backed by the partial claim index. Concurrent claims, from this process or
// another replica on the same PostgreSQL database, never return the same
// message: PostgreSQL skips rows another claim has locked; SQLite serialises
// writers.
func (s *Store) Claim(ctx context.Context, accountID int64, limit int, maxPos int64, now time.Time) ([]Claimed, error) {
	if s.pg {
		return scanClaimed(s.sqlDB().QueryContext(ctx, claimPostgres, now.UTC(), accountID, maxPos, limit))
	}
	var out []Claimed
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.claimIn(ctx, tx, nil, accountID, limit, maxPos, now)
		return err
	})
	return out, err
}

// claimSQL is the dialect's claim statement; its parameters are (claimed
// at, account, max position, limit).
func (s *Store) claimSQL() string {
	if s.pg {
		return claimPostgres
	}
	return claimSQLite
}

// inTx runs fn in a transaction and commits it. On SQLite the transaction is
// immediate: it takes the write lock before reading, so a writer on another
// connection makes a claim wait instead of failing on a stale snapshot.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.sqlDB().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("claim: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("claim: commit: %w", err)
	}
	return nil
}

// claimIn runs the claim in tx, with stmt (claimSQL prepared on the
// database) when not nil.
func (s *Store) claimIn(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, accountID int64, limit int, maxPos int64, now time.Time) ([]Claimed, error) {
	if stmt != nil {
		return scanClaimed(tx.StmtContext(ctx, stmt).QueryContext(ctx, now.UTC(), accountID, maxPos, limit))
	}
	return scanClaimed(tx.QueryContext(ctx, s.claimSQL(), now.UTC(), accountID, maxPos, limit))
}

// scanClaimed reads claimed rows and sorts them by position.
func scanClaimed(rows *sql.Rows, err error) ([]Claimed, error) {
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	defer rows.Close()
	var out []Claimed
	for rows.Next() {
		var c Claimed
		if err := rows.Scan(&c.Pos, &c.Phone, &c.Text); err != nil {
			return nil, fmt.Errorf("claim: scan: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	// RETURNING order is unspecified.
	slices.SortFunc(out, func(a, b Claimed) int { return cmp.Compare(a.Pos, b.Pos) })
	return out, nil
}

// claimSQLite relies on SQLite's single writer: the subquery and the update
// run under one write lock.
const claimSQLite = `UPDATE messages SET status = 1, claimed_at = ?
WHERE pos IN (SELECT pos FROM messages WHERE account_id = ? AND status = 0 AND pos <= ? ORDER BY pos LIMIT ?)
RETURNING pos, phone, text`

// claimPostgres locks the picked rows, skipping rows a concurrent claim holds.
// The pick is a CTE rather than an IN subquery so that it is evaluated
// exactly once (a re-evaluated LIMIT subquery could pick more rows than
// asked); a CTE with FOR UPDATE is always materialised.
const claimPostgres = `WITH picked AS (
    SELECT pos FROM messages WHERE account_id = $2 AND status = 0 AND pos <= $3
    ORDER BY pos LIMIT $4 FOR UPDATE SKIP LOCKED
)
UPDATE messages m SET status = 1, claimed_at = $1
FROM picked WHERE m.pos = picked.pos AND m.status = 0
RETURNING m.pos, m.phone, m.text`
