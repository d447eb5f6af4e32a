package store

// Queue extras (contract §12): scheduled messages become due, waiting
// messages whose lifetime ended expire, and the per-account lease settings.
//
// The state machine of a message (docs/architecture.md, "States") is
// enforced by the statements of this package, each guarded by the state it
// leaves: scheduled (-1, in its own table until due: scheduled.go) → new
// (Promote) ; new/scheduled → cancelled (Cancel), expired (ExpireDue) ;
// new → initiated (Claim) ; initiated → new or expired (Sweep, under the
// same claim only) ; new/initiated/scheduled → sent or failed (ApplyReports).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

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
// transaction; a scheduled one moves into messages as expired. It returns
// the expired positions, ascending. A message being claimed at the same
// moment is either handed out (its lifetime had not ended when the claim
// read it) or expired, never both.
func (s *Store) ExpireDue(ctx context.Context, now time.Time, limit int) ([]int64, error) {
	if !s.pg && !s.anyDue(ctx, expireProbeSQLite, now) && !s.anyDue(ctx, expireScheduledProbe, now) {
		return nil, nil
	}
	blank := ""
	if s.blankText {
		blank = ", text = ''"
	}
	var out []int64
	err := s.trackTx(ctx, func(tx *sql.Tx, d *backlogDelta) error {
		moved, err := s.moveScheduled(ctx, tx, d, s.pickEnded(), []any{now.UnixMilli(), limit}, StatusExpired, 1)
		if err != nil {
			return err
		}
		out = moved
		if len(moved) > 0 {
			if err := s.recordExpired(ctx, tx, moved, now); err != nil {
				return err
			}
		}
		if len(moved) >= limit {
			return nil
		}
		var dead []int64
		if s.pg {
			dead, err = scanPositions(tx.QueryContext(ctx, strings.Replace(expirePostgres, "refund = 1", "refund = 1"+blank, 1),
				now.UnixMilli(), limit-len(moved), now.UTC()))
			out = append(out, dead...)
			d.add(-int64(len(dead)), 0) // waiting to expired
			return err
		}
		dead, err = scanPositions(tx.QueryContext(ctx, strings.Replace(expireSQLite, "refund = 1", "refund = 1"+blank, 1),
			now.UnixMilli(), limit-len(moved)))
		if err != nil {
			return err
		}
		out = append(out, dead...)
		d.add(-int64(len(dead)), 0) // waiting to expired
		return s.recordExpired(ctx, tx, dead, now)
	})
	if err != nil {
		return nil, fmt.Errorf("expire due: %w", err)
	}
	slices.Sort(out)
	return out, nil
}

// The statements of ExpireDue on messages, each backed by the partial
// index messages_valid_idx so that their cost does not grow with the
// backlog; the SQLite probes run first without the write lock.
const (
	expireProbeSQLite    = `SELECT 1 FROM messages WHERE status <= 0 AND valid_until IS NOT NULL AND valid_until <= ? LIMIT 1`
	expireScheduledProbe = `SELECT 1 FROM scheduled WHERE valid_until IS NOT NULL AND valid_until <= ? LIMIT 1`
	expireSQLite         = `UPDATE messages SET status = 4, refund = 1
WHERE status <= 0 AND pos IN (SELECT pos FROM messages WHERE status <= 0 AND valid_until IS NOT NULL AND valid_until <= ?
    ORDER BY valid_until LIMIT ?) RETURNING pos`
	expirePostgres = `WITH due AS (
    SELECT pos FROM messages WHERE status <= 0 AND valid_until IS NOT NULL AND valid_until <= $1
    ORDER BY valid_until LIMIT $2 FOR UPDATE SKIP LOCKED
), dead AS (
    UPDATE messages m SET status = 4, refund = 1 FROM due WHERE m.pos = due.pos AND m.status <= 0 RETURNING m.pos
), recorded AS (
    INSERT INTO outcomes (pos, status, finished_at) SELECT pos, 4, $3 FROM dead ON CONFLICT DO NOTHING
)
SELECT pos FROM dead`
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
