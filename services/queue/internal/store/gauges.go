package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Backlog is what the queue holds, for the metrics.
type Backlog struct {
	Waiting   int64     // new messages
	OldestAt  time.Time // acceptance of the oldest new message (zero: none)
	Initiated int64     // handed out, not final
	initFloor int64
	waitFloor int64
}

// Floor is the position from which the next Backlog must look for
// initiated messages.
func (b Backlog) Floor() int64 {
	switch {
	case b.initFloor == 0:
		return b.waitFloor
	case b.waitFloor == 0:
		return b.initFloor
	}
	return min(b.initFloor, b.waitFloor)
}

// Backlog counts new messages (through the claim index, which holds only
// them), finds the oldest, and counts initiated messages without an
// outcome at positions from floor up (a range of the primary key). Every
// message handed out later is new now (at or above the oldest new
// position) or not stored yet (above everything), so the next call may
// start at the returned Backlog's Floor: the scan covers only the positions
// since the oldest message still pending, not the whole retention period.
// floor 0 scans everything (the first call).
func (s *Store) Backlog(ctx context.Context, floor int64) (Backlog, error) {
	var b Backlog
	var minPos sql.NullInt64
	db := s.readDB()
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*), MIN(pos) FROM messages WHERE status = 0").Scan(&b.Waiting, &minPos); err != nil {
		return b, fmt.Errorf("backlog: %w", err)
	}
	if minPos.Valid {
		b.waitFloor = minPos.Int64
		var at any
		if err := db.QueryRowContext(ctx, "SELECT accepted_at FROM messages WHERE pos = "+s.param(1), minPos.Int64).Scan(&at); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return b, fmt.Errorf("backlog: %w", err)
		} else if err == nil {
			if b.OldestAt, err = asTime(at); err != nil {
				return b, fmt.Errorf("backlog: %w", err)
			}
		}
	}
	minPos = sql.NullInt64{}
	q := "SELECT COUNT(*), MIN(m.pos) FROM messages m WHERE m.pos >= " + s.param(1) +
		" AND m.status = 1 AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.pos = m.pos)"
	if err := db.QueryRowContext(ctx, q, floor).Scan(&b.Initiated, &minPos); err != nil {
		return b, fmt.Errorf("backlog: %w", err)
	}
	if minPos.Valid {
		b.initFloor = minPos.Int64
	}
	if b.Floor() == 0 {
		// Nothing pending: later hand-outs are of messages stored later.
		var maxPos sql.NullInt64
		if err := db.QueryRowContext(ctx, "SELECT MAX(pos) FROM messages").Scan(&maxPos); err != nil {
			return b, fmt.Errorf("backlog: %w", err)
		}
		b.waitFloor = max(floor, maxPos.Int64+1)
	}
	return b, nil
}

// PhonesOnline counts the phones of every account seen (a pull or a
// report) since since: the ones the phones page shows online.
func (s *Store) PhonesOnline(ctx context.Context, since time.Time) (int64, error) {
	var n int64
	if err := s.readDB().QueryRowContext(ctx, "SELECT COUNT(*) FROM phones WHERE last_seen_ms >= "+s.param(1), since.UnixMilli()).Scan(&n); err != nil {
		return 0, fmt.Errorf("phones online: %w", err)
	}
	return n, nil
}
