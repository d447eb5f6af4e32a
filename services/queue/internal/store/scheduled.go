package store

// Scheduled messages (sendAt ahead, status -1) live in their own table,
// scheduled, with the columns of messages, until they are due: then
// Promote moves them into messages at their own position, which is their
// FIFO place. A backlog of future messages thus never sits between the due
// rows that a claim, an ack and a report touch (docs/benchmarks.md,
// "2026-12-01: a scheduled backlog apart"). A scheduled message leaves the
// table only through moveScheduled: as new when due (Promote) or when a
// report settles it early (RecordReports), as final when cancelled or
// expired. Tracking reads both tables in one statement, so a reader sees a
// message moving exactly once, before or after the move.

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// movedColumns are the columns a move copies as they are; status and
// refund are set by the move, text is blanked when the move makes the
// message final and texts are not kept.
const movedColumns = "pos, account_id, phone, accepted_at, claimed_at, claim_id, attempts, send_at, valid_until, lane"

// moveScheduled moves the scheduled rows that pick (a SELECT of positions
// from scheduled, with its args) finds into messages with status and
// refund, in tx, and returns their positions in pick's order; moved as
// new, they join the waiting count (d). On
// PostgreSQL pick should lock what it reads (FOR UPDATE, with SKIP LOCKED
// where another mover may take the rest): the rows stay locked until tx
// ends, so two movers never move the same row, and a mover that waited
// finds a row another one moved gone. On SQLite tx holds the only write
// lock. Rows are copied, then deleted, in the same transaction: a crash
// leaves a row in one table or the other, never both nor none.
func (s *Store) moveScheduled(ctx context.Context, tx *sql.Tx, d *backlogDelta, pick string, args []any, status int, refund int) ([]int64, error) {
	positions, err := scanPositions(tx.QueryContext(ctx, pick, args...))
	if err != nil {
		return nil, fmt.Errorf("pick scheduled: %w", err)
	}
	text := "text"
	if s.blankText && status >= StatusSent {
		text = "''"
	}
	var b strings.Builder
	for rest := positions; len(rest) > 0; {
		n := min(len(rest), reportChunk)
		in := make([]any, 0, n+2)
		in = append(in, status, refund)
		for _, p := range rest[:n] {
			in = append(in, p)
		}
		b.Reset()
		b.WriteString("INSERT INTO messages (" + movedColumns + ", text, status, refund) SELECT " + movedColumns + ", " + text +
			", " + s.param(1) + ", " + s.param(2) + " FROM scheduled WHERE pos IN (")
		s.placeholders(&b, 3, n)
		// A row already in messages (never written so, see insertExtras)
		// keeps that row: the message is still there once.
		b.WriteString(") ON CONFLICT DO NOTHING")
		res, err := tx.ExecContext(ctx, b.String(), in...)
		if err != nil {
			return nil, fmt.Errorf("move scheduled: %w", err)
		}
		if status == StatusNew {
			added, err := res.RowsAffected()
			if err != nil {
				return nil, fmt.Errorf("move scheduled: %w", err)
			}
			d.add(added, 0)
		}
		b.Reset()
		b.WriteString("DELETE FROM scheduled WHERE pos IN (")
		s.placeholders(&b, 1, n)
		b.WriteByte(')')
		if _, err := tx.ExecContext(ctx, b.String(), in[2:]...); err != nil {
			return nil, fmt.Errorf("move scheduled: %w", err)
		}
		rest = rest[n:]
	}
	return positions, nil
}

// The picks of moveScheduled: due ones (now, limit), whose lifetime ended
// (now, limit), one of an account (pos, account). Each is backed by an
// index of scheduled, so its cost does not grow with the backlog.
func (s *Store) pickDue() string {
	return "SELECT pos FROM scheduled WHERE send_at <= " + s.param(1) + " ORDER BY send_at LIMIT " + s.param(2) + s.lock(true)
}

func (s *Store) pickEnded() string {
	return "SELECT pos FROM scheduled WHERE valid_until IS NOT NULL AND valid_until <= " + s.param(1) +
		" ORDER BY valid_until LIMIT " + s.param(2) + s.lock(true)
}

func (s *Store) pickOne() string {
	return "SELECT pos FROM scheduled WHERE pos = " + s.param(1) + " AND account_id = " + s.param(2) + s.lock(false)
}

// promoteProbe finds whether anything is due (one parameter: now), read
// without SQLite's write lock.
func (s *Store) promoteProbe() string {
	return "SELECT 1 FROM scheduled WHERE send_at <= " + s.param(1) + " LIMIT 1"
}

// lock is the row-lock clause of a pick: none on SQLite (one writer).
func (s *Store) lock(skip bool) string {
	switch {
	case !s.pg:
		return ""
	case skip:
		return " FOR UPDATE SKIP LOCKED"
	}
	return " FOR UPDATE"
}

// Promote moves up to limit scheduled messages whose send_at is at or
// before now into messages as new (due: the claim index then holds them at
// their FIFO place), oldest send_at first, in one transaction, and returns
// how many. Replicas may promote at once: each row moves once.
func (s *Store) Promote(ctx context.Context, now time.Time, limit int) (int64, error) {
	if !s.anyDue(ctx, s.promoteProbe(), now) {
		return 0, nil
	}
	var moved []int64
	err := s.trackTx(ctx, func(tx *sql.Tx, d *backlogDelta) error {
		var err error
		moved, err = s.moveScheduled(ctx, tx, d, s.pickDue(), []any{now.UnixMilli(), limit}, StatusNew, 0)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("promote scheduled: %w", err)
	}
	return int64(len(moved)), nil
}

// takeReportedScheduled moves the scheduled messages that reports name
// (and rows, the messages found, lacks) into messages as new, in tx, and
// adds them to rows: the report then settles them as it settles a message
// still new. Only the reporting account's messages move.
func (s *Store) takeReportedScheduled(ctx context.Context, tx *sql.Tx, d *backlogDelta, reports []Report, rows map[int64]*reportedRow) error {
	byAccount := map[int64][]any{}
	var accounts []int64
	for _, r := range reports {
		if _, ok := rows[r.Pos]; ok || r.Status != StatusSent && r.Status != StatusFailed {
			continue
		}
		if _, ok := byAccount[r.AccountID]; !ok {
			accounts = append(accounts, r.AccountID)
		}
		byAccount[r.AccountID] = append(byAccount[r.AccountID], r.Pos)
	}
	var b strings.Builder
	for _, account := range accounts {
		for rest := byAccount[account]; len(rest) > 0; {
			n := min(len(rest), reportChunk)
			b.Reset()
			b.WriteString("SELECT pos FROM scheduled WHERE account_id = " + s.param(1) + " AND pos IN (")
			s.placeholders(&b, 2, n)
			b.WriteString(") ORDER BY pos" + s.lock(false))
			moved, err := s.moveScheduled(ctx, tx, d, b.String(), append([]any{account}, rest[:n]...), StatusNew, 0)
			if err != nil {
				return err
			}
			if len(moved) > 0 {
				found := make([]any, len(moved))
				for i, p := range moved {
					found[i] = p
				}
				if err := s.readReported(ctx, tx, nil, found, rows, true); err != nil { // rare: read in full
					return err
				}
			}
			rest = rest[n:]
		}
	}
	return nil
}
