package store

import (
	"context"
	"fmt"
	"time"

	"github.com/apitosms/apitosms/libs/database"
)

// Outboxed is one event of the outbox: a ReportedBatch (in the compact form
// of internal/apply, outboxcodec.go) written in the transaction that made the
// changes it announces.
type Outboxed struct {
	ID      int64
	Payload []byte
}

// AddOutbox records payload in the outbox, in q's transaction, and returns
// its id (never reused: AUTOINCREMENT or an identity column).
func (q *Queries) AddOutbox(ctx context.Context, payload []byte, at time.Time) (int64, error) {
	var id int64
	var err error
	if q.stmts != nil {
		err = q.tx.StmtContext(ctx, q.stmts.addOutbox).QueryRowContext(ctx, payload, at.UnixMilli()).Scan(&id)
	} else {
		err = q.tx.QueryRowContext(ctx, addOutboxPostgres, payload, at.UnixMilli()).Scan(&id)
	}
	if err != nil {
		return 0, fmt.Errorf("add outbox: %w", err)
	}
	return id, nil
}

// DeleteOutbox removes the events ids (published), in q's transaction. Ids
// already gone are ignored.
func (q *Queries) DeleteOutbox(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	var err error
	if q.stmts != nil {
		_, err = q.tx.StmtContext(ctx, q.stmts.delOutbox).ExecContext(ctx, database.JSONInts(ids))
	} else {
		_, err = q.tx.ExecContext(ctx, delOutboxPostgres, ids)
	}
	if err != nil {
		return fmt.Errorf("delete outbox: %w", err)
	}
	return nil
}

// DeleteOutbox removes the events ids in a transaction of its own.
func (s *Store) DeleteOutbox(ctx context.Context, ids []int64) error {
	return s.InTx(ctx, func(ctx context.Context, q *Queries) error { return q.DeleteOutbox(ctx, ids) })
}

// PendingOutbox returns at most limit events of the outbox written before
// before, oldest first.
func (s *Store) PendingOutbox(ctx context.Context, before time.Time, limit int) ([]Outboxed, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, payload FROM reported_outbox WHERE created_ms < ? ORDER BY id LIMIT ?`,
		before.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	defer rows.Close()
	var out []Outboxed
	for rows.Next() {
		var o Outboxed
		if err := rows.Scan(&o.ID, &o.Payload); err != nil {
			return nil, fmt.Errorf("pending outbox: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	return out, nil
}

// OutboxLen returns the number of events in the outbox.
func (s *Store) OutboxLen(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM reported_outbox`).Scan(&n)
	return n, err
}
