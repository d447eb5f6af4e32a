package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A claim made with a Confirm id stays open until the caller acknowledges
// it (Ack) or its confirm deadline passes (Sweep). The state machine of a
// message is new → initiated (claimed) → new again when its open claim
// expires, at its FIFO position (the primary key), or final when reported.
// A message carries the id of the claim it was last handed out under, so a
// sweep only returns messages still initiated under that very claim.

// ackChunk bounds the ids of one DELETE.
const ackChunk = 1000

// Ack closes the claims ids (their messages stay initiated for good) and
// returns how many were open. Unknown or already closed ids are ignored, so
// acks are idempotent; an ack that comes after its claim was swept changes
// nothing (the messages were handed out again).
func (s *Store) Ack(ctx context.Context, ids []int64) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = s.ackIn(ctx, tx, ids)
		return err
	})
	return n, err
}

func (s *Store) ackIn(ctx context.Context, tx *sql.Tx, ids []int64) (int64, error) {
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
		b.WriteString("DELETE FROM claims WHERE id IN (")
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
	Claims   int64 // expired claims closed
	Requeued int64 // their messages set back to new
}

// Sweep closes up to limit claims whose confirm deadline is at or before
// now and sets their messages that are still initiated under them back to
// new, so they are handed out again at their original FIFO place. Messages
// reported meanwhile (final) or handed out again under another claim are
// left alone. It is one transaction, so a crash mid-sweep changes nothing,
// and replicas may sweep at once: PostgreSQL skips claims another sweep or
// ack holds, SQLite serialises writers. Call it again while Claims == limit.
func (s *Store) Sweep(ctx context.Context, now time.Time, limit int) (Swept, error) {
	var out Swept
	if s.pg {
		err := s.sqlDB().QueryRowContext(ctx, sweepPostgres, now.UnixMilli(), limit).Scan(&out.Claims, &out.Requeued)
		if err != nil {
			return Swept{}, fmt.Errorf("sweep claims: %w", err)
		}
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
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, positions FROM claims WHERE expires_ms <= ? ORDER BY expires_ms LIMIT ?`,
			now.UnixMilli(), limit)
		if err != nil {
			return fmt.Errorf("sweep claims: %w", err)
		}
		type expired struct {
			id        int64
			positions []int64
		}
		var claims []expired
		for rows.Next() {
			var c expired
			var blob []byte
			if err := rows.Scan(&c.id, &blob); err != nil {
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
		var b strings.Builder
		ids := make([]int64, 0, len(claims))
		for _, c := range claims {
			ids = append(ids, c.id)
			for rest := c.positions; len(rest) > 0; {
				k := min(len(rest), reportChunk)
				args := make([]any, 0, k+1)
				args = append(args, c.id)
				for _, p := range rest[:k] {
					args = append(args, p)
				}
				b.Reset()
				b.WriteString("UPDATE messages SET status = 0, claimed_at = NULL, claim_id = NULL WHERE claim_id = ? AND status = 1 AND pos IN (")
				s.placeholders(&b, 2, k)
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
				rest = rest[k:]
			}
		}
		if out.Claims, err = s.ackIn(ctx, tx, ids); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return Swept{}, err
	}
	return out, nil
}

// sweepPostgres closes expired claims (skipping those a concurrent sweep or
// ack has locked) and requeues their messages still initiated under them, by
// primary key. Parameters: now (Unix ms), limit.
const sweepPostgres = `WITH doomed AS (
    SELECT id FROM claims WHERE expires_ms <= $1 ORDER BY expires_ms LIMIT $2 FOR UPDATE SKIP LOCKED
), expired AS (
    DELETE FROM claims c USING doomed d WHERE c.id = d.id RETURNING c.id, c.positions
), requeued AS (
    UPDATE messages m SET status = 0, claimed_at = NULL, claim_id = NULL
    FROM (SELECT id, unnest(positions) AS pos FROM expired) e
    WHERE m.pos = e.pos AND m.claim_id = e.id AND m.status = 1
    RETURNING m.pos
)
SELECT (SELECT count(*) FROM expired), (SELECT count(*) FROM requeued)`

// openClaims returns which of ids are open claims, read in tx.
func (s *Store) openClaims(ctx context.Context, tx *sql.Tx, ids []int64) (map[int64]bool, error) {
	open := make(map[int64]bool)
	var b strings.Builder
	for rest := ids; len(rest) > 0; {
		k := min(len(rest), ackChunk)
		args := make([]any, k)
		for i, id := range rest[:k] {
			args[i] = id
		}
		b.Reset()
		b.WriteString("SELECT id FROM claims WHERE id IN (")
		s.placeholders(&b, 1, k)
		b.WriteByte(')')
		rows, err := tx.QueryContext(ctx, b.String(), args...)
		if err != nil {
			return nil, fmt.Errorf("find open claims: %w", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("find open claims: %w", err)
			}
			open[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("find open claims: %w", err)
		}
		rest = rest[k:]
	}
	return open, nil
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
