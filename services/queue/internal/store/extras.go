package store

// Queue extras (contract §12): scheduled messages become due, waiting
// messages whose lifetime ended expire, and the per-account lease settings.
//
// The state machine of a message (docs/architecture.md, "States") is
// enforced by the statements of this package, each guarded by the state it
// leaves: scheduled (-1) → new (Promote) ; new/scheduled → cancelled
// (Cancel), expired (ExpireDue) ; new → initiated (Claim) ; initiated →
// new or expired (Sweep, under the same claim only) ; new/initiated → sent
// or failed (ApplyReports).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Promote makes up to limit scheduled messages whose send_at is at or
// before now new (due: the claim index then holds them at their FIFO
// place) and returns how many. Replicas may promote at once: each row
// changes once (PostgreSQL skips rows another promotion holds; SQLite has
// one writer).
func (s *Store) Promote(ctx context.Context, now time.Time, limit int) (int64, error) {
	q := promoteSQLite
	if s.pg {
		q = `WITH due AS (
    SELECT pos FROM messages WHERE status = -1 AND send_at <= $1 ORDER BY send_at LIMIT $2 FOR UPDATE SKIP LOCKED
) UPDATE messages m SET status = 0 FROM due WHERE m.pos = due.pos AND m.status = -1`
	} else if !s.anyDue(ctx, promoteProbeSQLite, now) {
		return 0, nil
	}
	res, err := s.sqlDB().ExecContext(ctx, q, now.UnixMilli(), limit)
	if err != nil {
		return 0, fmt.Errorf("promote scheduled: %w", err)
	}
	return res.RowsAffected()
}

// anyDue reports whether probe (one parameter: now in Unix ms) finds a row,
// read without SQLite's write lock; on error it answers true so that the
// write reports the error.
func (s *Store) anyDue(ctx context.Context, probe string, now time.Time) bool {
	var one int
	err := s.sqlDB().QueryRowContext(ctx, probe, now.UnixMilli()).Scan(&one)
	return !errors.Is(err, sql.ErrNoRows)
}

// ExpireDue expires up to limit waiting messages (new or scheduled) whose
// valid_until is at or before now: status 4, an outcome row, and the quota
// marked for refund (the cancel outbox, TakeRefunds), all in one
// transaction. It returns the expired positions, ascending. A message being
// claimed at the same moment is either handed out (its lifetime had not
// ended when the claim read it) or expired, never both.
func (s *Store) ExpireDue(ctx context.Context, now time.Time, limit int) ([]int64, error) {
	blank := ""
	if s.blankText {
		blank = ", text = ''"
	}
	if s.pg {
		rows, err := s.sqlDB().QueryContext(ctx, `WITH due AS (
    SELECT pos FROM messages WHERE status <= 0 AND valid_until IS NOT NULL AND valid_until <= $1
    ORDER BY valid_until LIMIT $2 FOR UPDATE SKIP LOCKED
), dead AS (
    UPDATE messages m SET status = 4, refund = 1`+blank+` FROM due WHERE m.pos = due.pos AND m.status <= 0 RETURNING m.pos
), recorded AS (
    INSERT INTO outcomes (pos, status, finished_at) SELECT pos, 4, $3 FROM dead ON CONFLICT DO NOTHING
)
SELECT pos FROM dead`, now.UnixMilli(), limit, now.UTC())
		out, err := scanPositions(rows, err)
		if err != nil {
			return nil, fmt.Errorf("expire due: %w", err)
		}
		slices.Sort(out)
		return out, nil
	}
	if !s.anyDue(ctx, expireProbeSQLite, now) {
		return nil, nil
	}
	var out []int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = scanPositions(tx.QueryContext(ctx, strings.Replace(expireSQLite, "refund = 1", "refund = 1"+blank, 1), now.UnixMilli(), limit))
		if err != nil {
			return err
		}
		return s.recordExpired(ctx, tx, out, now)
	})
	if err != nil {
		return nil, fmt.Errorf("expire due: %w", err)
	}
	slices.Sort(out)
	return out, nil
}

// The SQLite statements of Promote and ExpireDue, each backed by its
// partial index (messages_scheduled_idx, messages_valid_idx) so that their
// cost does not grow with the backlog; the probes run first without the
// write lock.
const (
	promoteProbeSQLite = `SELECT 1 FROM messages WHERE status = -1 AND send_at <= ? LIMIT 1`
	promoteSQLite      = `UPDATE messages SET status = 0 WHERE status = -1 AND pos IN (
    SELECT pos FROM messages WHERE status = -1 AND send_at <= ? ORDER BY send_at LIMIT ?)`
	expireProbeSQLite = `SELECT 1 FROM messages WHERE status <= 0 AND valid_until IS NOT NULL AND valid_until <= ? LIMIT 1`
	expireSQLite      = `UPDATE messages SET status = 4, refund = 1
WHERE status <= 0 AND pos IN (SELECT pos FROM messages WHERE status <= 0 AND valid_until IS NOT NULL AND valid_until <= ?
    ORDER BY valid_until LIMIT ?) RETURNING pos`
)

// Settings are an account's lease settings (contract §12). LeaseSeconds 0:
// no lease. OnExpiry is "requeue" or "expire".
type Settings struct {
	LeaseSeconds int
	OnExpiry     string
	MaxAttempts  int
}

// DefaultSettings apply to an account that never changed them.
var DefaultSettings = Settings{LeaseSeconds: 0, OnExpiry: "requeue", MaxAttempts: 3}

var onExpiryCode = map[string]int{"requeue": leaseRequeue, "expire": leaseExpire}

// GetSettings returns the account's settings (DefaultSettings when unset).
func (s *Store) GetSettings(ctx context.Context, accountID int64) (Settings, error) {
	var lease, mode, maxAttempts int
	err := s.sqlDB().QueryRowContext(ctx, "SELECT lease_seconds, on_expiry, max_attempts FROM account_settings WHERE account_id = "+s.param(1),
		accountID).Scan(&lease, &mode, &maxAttempts)
	if errors.Is(err, sql.ErrNoRows) {
		return DefaultSettings, nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf("get settings: %w", err)
	}
	out := Settings{LeaseSeconds: lease, OnExpiry: "requeue", MaxAttempts: maxAttempts}
	if mode == leaseExpire {
		out.OnExpiry = "expire"
	}
	return out, nil
}

// PutSettings stores the account's settings (validated by the caller). They
// apply to claims made from then on; a claim keeps the lease it was made
// under.
func (s *Store) PutSettings(ctx context.Context, accountID int64, set Settings) error {
	mode, ok := onExpiryCode[set.OnExpiry]
	if !ok {
		return fmt.Errorf("put settings: unknown onLeaseExpiry %q", set.OnExpiry)
	}
	_, err := s.sqlDB().ExecContext(ctx, "INSERT INTO account_settings (account_id, lease_seconds, on_expiry, max_attempts) VALUES ("+
		s.param(1)+", "+s.param(2)+", "+s.param(3)+", "+s.param(4)+") ON CONFLICT (account_id) DO UPDATE SET "+
		"lease_seconds = excluded.lease_seconds, on_expiry = excluded.on_expiry, max_attempts = excluded.max_attempts",
		accountID, set.LeaseSeconds, mode, set.MaxAttempts)
	if err != nil {
		return fmt.Errorf("put settings: %w", err)
	}
	return nil
}
