package store

import (
	"context"
	"database/sql"
	"time"
)

// The report statements on PostgreSQL, with fixed texts and the positions as
// one bigint[] argument. bun inlined the arguments (the position list, the
// outbox payload) into the SQL text, so every statement was new to the
// server: parsed and planned each time, and prepared by pgx (a round trip)
// only to be evicted from its statement cache unused. With a fixed text pgx
// prepares each once per connection and PostgreSQL plans it once (docs/
// benchmarks.md, 2026-12-02 session 4).
//
// markFinalPostgres takes no row locks ahead of the UPDATE (the earlier
// `SELECT … ORDER BY pos FOR UPDATE` wrote a lock record per row before
// the update's own): the primary-key scan of `pos = ANY` visits the
// positions in ascending order, so concurrent requests lock shared rows in
// the same order, and a deadlock that a group of requests in one transaction
// could still meet is retried (InTx). Of two concurrent updates of one row,
// the second re-checks `status < 2` on the committed row and leaves it.
const (
	markFinalPostgres = `UPDATE deliveries SET status = $1, device = $2, reported_at = $3
		WHERE account_id = $4 AND pos = ANY($5::bigint[]) AND status < $6 RETURNING pos`
	statusesPostgres  = `SELECT pos, status FROM deliveries WHERE account_id = $1 AND pos = ANY($2::bigint[])`
	addOutboxPostgres = `INSERT INTO reported_outbox (payload, created_ms) VALUES ($1, $2) RETURNING id`
	delOutboxPostgres = `DELETE FROM reported_outbox WHERE id = ANY($1::bigint[])`
)

// markFinalPostgresTx is MarkFinal on PostgreSQL.
func (q *Queries) markFinalPostgresTx(ctx context.Context, accountID int64, positions []int64, status int, device string, reportedAt time.Time) ([]int64, error) {
	return changedPositions(q.tx.QueryContext(ctx, markFinalPostgres, status, device, reportedAt.UTC(), accountID, positions, finalFrom))
}

// changedPositions reads the positions a MarkFinal statement returned.
func changedPositions(rows *sql.Rows, err error) ([]int64, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var changed []int64
	for rows.Next() {
		var pos int64
		if err := rows.Scan(&pos); err != nil {
			return nil, err
		}
		changed = append(changed, pos)
	}
	return changed, rows.Err()
}
