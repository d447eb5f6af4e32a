package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/apitosms/apitosms/libs/database"
)

// A claim made with a Confirm id stays open until the caller acknowledges
// it (Ack) or its confirm deadline passes (Sweep); a leased claim (contract
// §12) stays open until its lease ends, ack or not. When an open claim
// ends, its messages still initiated under it go back to new at their FIFO
// position (the primary key) or, under a lease, expire (the whole state
// machine: extras.go and docs/architecture.md, "States"). A message carries
// the id of the claim it was last handed out under, so a sweep only touches
// messages still initiated under that very claim.

// ackChunk bounds the ids of one DELETE.
const ackChunk = 1000

// Ack closes the claims ids (their messages stay initiated for good) and
// returns how many were open. Unknown or already closed ids are ignored, so
// acks are idempotent; an ack that comes after its claim was swept changes
// nothing (the messages were handed out again). A leased claim (the
// account has a lease, contract §12) is not closed by its ack: it stays
// open until its lease ends, so the sweep can requeue or expire what was
// not reported by then.
func (s *Store) Ack(ctx context.Context, ids []int64) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx, _ *backlogDelta) error {
		var err error
		n, err = s.ackIn(ctx, tx, nil, ids)
		return err
	})
	return n, err
}

// stmt, when not nil, is ackSQLite prepared (ClaimGroup.prepare): one text
// for any number of ids, so SQLite does not parse it anew for every ack.
func (s *Store) ackIn(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, ids []int64) (int64, error) {
	if stmt == nil {
		return s.closeClaims(ctx, tx, ids, "DELETE FROM claims WHERE lease = 0 AND id IN (")
	}
	res, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, jsonPositions(ids))
	if err != nil {
		return 0, fmt.Errorf("ack claims: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("ack claims: %w", err)
	}
	return n, nil
}

// ackSQLite is ackIn's DELETE on SQLite with the ids as one JSON array.
const ackSQLite = `DELETE FROM claims WHERE lease = 0 AND id IN (SELECT value FROM json_each(?))`

// closeClaims deletes the claims ids with del (a DELETE up to its IN list).
func (s *Store) closeClaims(ctx context.Context, tx *sql.Tx, ids []int64, del string) (int64, error) {
	var b strings.Builder
	var n int64
	args := make([]any, 0, min(len(ids), ackChunk))
	for rest := ids; len(rest) > 0; {
		k := min(len(rest), ackChunk)
		args = args[:0]
		for _, id := range rest[:k] {
			args = append(args, id)
		}
		b.Reset()
		b.WriteString(del)
		s.placeholders(&b, 1, k)
		b.WriteByte(')')
		res, err := tx.ExecContext(ctx, b.String(), args...)
		if err != nil {
			return 0, fmt.Errorf("ack claims: %w", err)
		}
		affected, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("ack claims: %w", err)
		}
		n += affected
		rest = rest[k:]
	}
	return n, nil
}

// Swept is what one Sweep did.
type Swept struct {
	Claims   int64   // expired claims closed
	Requeued int64   // their messages set back to new
	Expired  []int64 // their messages expired (a lease ran out, contract §12), by position
}

// Lease modes of a claim (claims.lease; account_settings.on_expiry).
const (
	leaseNone    = 0 // closed by its ack; unconfirmed messages requeue
	leaseRequeue = 1 // requeue until max_attempts hand-outs, then expire
	leaseExpire  = 2 // expire
)

// Sweep closes up to limit claims whose deadline is at or before now
// (unconfirmed claims: their confirm deadline; leased claims: the end of
// their lease) and settles their messages still initiated under them: back
// to new at their original FIFO place, or, for a leased claim in expire
// mode or a message handed out max_attempts times, expired (status 4, an
// outcomes row, its quota marked for refund as a cancel's is). Messages
// reported meanwhile (final) or handed out again under another claim are
// left alone. It is one transaction, so a crash mid-sweep changes nothing,
// and replicas may sweep at once: PostgreSQL skips claims another sweep or
// ack holds, SQLite serialises writers; either way each claim is settled
// by exactly one sweep. Call it again while Claims == limit.
func (s *Store) Sweep(ctx context.Context, now time.Time, limit int) (Swept, error) {
	var out Swept
	if s.pg {
		// A sweep's locks can meet a report's or a claim's in the other
		// order (PostgreSQL then aborts one as a deadlock): the sweep, one
		// transaction, simply runs again.
		err := database.RetryConflicts(ctx, func() error {
			return s.inTx(ctx, func(tx *sql.Tx, d *backlogDelta) error {
				out = Swept{}
				rows, err := tx.QueryContext(ctx, sweepPostgres, now.UnixMilli(), limit, now.UTC(), s.blankText)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var kind int
					var v int64
					if err := rows.Scan(&kind, &v); err != nil {
						return err
					}
					switch kind {
					case 0:
						out.Claims = v
					case 1:
						out.Requeued = v
					default:
						out.Expired = append(out.Expired, v)
					}
				}
				if err := rows.Err(); err != nil {
					return err
				}
				// Requeued: initiated to waiting; expired: initiated to final.
				d.add(out.Requeued, -out.Requeued-int64(len(out.Expired)))
				return nil
			})
		})
		if err != nil {
			return Swept{}, fmt.Errorf("sweep claims: %w", err)
		}
		slices.Sort(out.Expired)
		return out, nil
	}
	// Usually nothing has expired: find that out without taking SQLite's
	// write lock, which ingestion and claims wait for.
	var one int
	err := s.sqlDB().QueryRowContext(ctx, `SELECT 1 FROM claims WHERE expires_ms <= ? LIMIT 1`, now.UnixMilli()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return Swept{}, nil
	}
	if err != nil {
		return Swept{}, fmt.Errorf("sweep claims: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx, d *backlogDelta) error {
		out = Swept{}
		rows, err := tx.QueryContext(ctx, `SELECT id, positions, lease, max_attempts FROM claims WHERE expires_ms <= ? ORDER BY expires_ms LIMIT ?`,
			now.UnixMilli(), limit)
		if err != nil {
			return fmt.Errorf("sweep claims: %w", err)
		}
		type expired struct {
			id          int64
			positions   []int64
			lease       int
			maxAttempts int
		}
		var claims []expired
		for rows.Next() {
			var c expired
			var blob []byte
			if err := rows.Scan(&c.id, &blob, &c.lease, &c.maxAttempts); err != nil {
				rows.Close()
				return fmt.Errorf("sweep claims: %w", err)
			}
			if c.positions, err = decodePositions(blob); err != nil {
				rows.Close()
				return fmt.Errorf("sweep claim %d: %w", c.id, err)
			}
			claims = append(claims, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sweep claims: %w", err)
		}
		blank := ""
		if s.blankText {
			blank = ", text = ''"
		}
		var b strings.Builder
		ids := make([]int64, 0, len(claims))
		for _, c := range claims {
			ids = append(ids, c.id)
			// requeueBelow: messages handed out fewer times go back to new,
			// the others expire.
			requeueBelow := math.MaxInt32
			switch c.lease {
			case leaseRequeue:
				requeueBelow = c.maxAttempts
			case leaseExpire:
				requeueBelow = 0
			}
			for rest := c.positions; len(rest) > 0; {
				k := min(len(rest), reportChunk)
				args := make([]any, 0, k+2)
				args = append(args, c.id, requeueBelow)
				for _, p := range rest[:k] {
					args = append(args, p)
				}
				b.Reset()
				b.WriteString("UPDATE messages SET status = 0, claimed_at = NULL, claim_id = NULL WHERE claim_id = ? AND status = 1 AND attempts < ? AND pos IN (")
				s.placeholders(&b, 3, k)
				b.WriteByte(')')
				res, err := tx.ExecContext(ctx, b.String(), args...)
				if err != nil {
					return fmt.Errorf("requeue claim %d: %w", c.id, err)
				}
				n, err := res.RowsAffected()
				if err != nil {
					return fmt.Errorf("requeue claim %d: %w", c.id, err)
				}
				out.Requeued += n
				if c.lease != leaseNone {
					b.Reset()
					b.WriteString("UPDATE messages SET status = 4, refund = 1" + blank + " WHERE claim_id = ? AND status = 1 AND attempts >= ? AND pos IN (")
					s.placeholders(&b, 3, k)
					b.WriteString(") RETURNING pos")
					dead, err := scanPositions(tx.QueryContext(ctx, b.String(), args...))
					if err != nil {
						return fmt.Errorf("expire claim %d: %w", c.id, err)
					}
					if err := s.recordExpired(ctx, tx, dead, now); err != nil {
						return err
					}
					out.Expired = append(out.Expired, dead...)
				}
				rest = rest[k:]
			}
		}
		if out.Claims, err = s.closeClaims(ctx, tx, ids, "DELETE FROM claims WHERE id IN ("); err != nil {
			return err
		}
		// Requeued: initiated to waiting; expired: initiated to final.
		d.add(out.Requeued, -out.Requeued-int64(len(out.Expired)))
		return nil
	})
	if err != nil {
		return Swept{}, err
	}
	slices.Sort(out.Expired)
	return out, nil
}

// sweepPostgres closes expired claims (skipping those a concurrent sweep or
// ack has locked) and settles their messages still initiated under them, by
// primary key: requeued, or expired with an outcome and a pending refund.
// It answers rows (kind, value): (0, claims closed), (1, messages
// requeued), and (2, position) per message expired. Parameters: now (Unix
// ms), limit, now (time), blank texts.
const sweepPostgres = `WITH doomed AS (
    SELECT id FROM claims WHERE expires_ms <= $1 ORDER BY expires_ms LIMIT $2 FOR UPDATE SKIP LOCKED
), expired AS (
    DELETE FROM claims c USING doomed d WHERE c.id = d.id RETURNING c.id, c.positions, c.lease, c.max_attempts
), held AS (
    SELECT id, unnest(positions) AS pos,
        CASE lease WHEN 1 THEN max_attempts WHEN 2 THEN 0 ELSE 2147483647 END AS requeue_below
    FROM expired
), requeued AS (
    UPDATE messages m SET status = 0, claimed_at = NULL, claim_id = NULL
    FROM held h WHERE m.pos = h.pos AND m.claim_id = h.id AND m.status = 1 AND m.attempts < h.requeue_below
    RETURNING m.pos
), dead AS (
    UPDATE messages m SET status = 4, refund = 1, text = CASE WHEN $4 THEN '' ELSE m.text END
    FROM held h WHERE m.pos = h.pos AND m.claim_id = h.id AND m.status = 1 AND m.attempts >= h.requeue_below
    RETURNING m.pos
), recorded AS (
    INSERT INTO outcomes (pos, status, finished_at) SELECT pos, 4, $3 FROM dead ON CONFLICT DO NOTHING
)
SELECT 0, (SELECT count(*) FROM expired)
UNION ALL SELECT 1, (SELECT count(*) FROM requeued)
UNION ALL SELECT 2, pos FROM dead`

// recordExpired appends the outcome "expired at now" of positions.
func (s *Store) recordExpired(ctx context.Context, tx *sql.Tx, positions []int64, now time.Time) error {
	var b strings.Builder
	at := s.timeParam(now)
	for rest := positions; len(rest) > 0; {
		k := min(len(rest), reportChunk)
		b.Reset()
		b.WriteString("INSERT INTO outcomes (pos, status, finished_at) VALUES ")
		args := make([]any, 0, 3*k)
		for i, p := range rest[:k] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			s.placeholders(&b, 3*i+1, 3)
			b.WriteByte(')')
			args = append(args, p, StatusExpired, at)
		}
		b.WriteString(" ON CONFLICT DO NOTHING")
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("record expired: %w", err)
		}
		rest = rest[k:]
	}
	return nil
}

// scanPositions reads one column of positions.
func scanPositions(rows *sql.Rows, err error) ([]int64, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// encodePositions writes ascending positions as unsigned varint deltas (the
// first from 0): a claim's positions are mostly consecutive, so about one
// byte each.
func encodePositions(positions []int64) []byte {
	out := make([]byte, 0, len(positions)+8)
	prev := int64(0)
	for _, p := range positions {
		out = binary.AppendUvarint(out, uint64(p-prev))
		prev = p
	}
	return out
}

var errBadPositions = errors.New("malformed claim positions")

// decodePositions reverses encodePositions.
func decodePositions(b []byte) ([]int64, error) {
	var out []int64
	prev := int64(0)
	for len(b) > 0 {
		d, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errBadPositions
		}
		prev += int64(d)
		out = append(out, prev)
		b = b[n:]
	}
	return out, nil
}
