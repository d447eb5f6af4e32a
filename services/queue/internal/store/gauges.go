package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// The backlog counts (table backlog_counts) hold how many messages wait
// (status new, in messages: scheduled ones are not waiting until promoted)
// and how many are initiated (handed out, no outcome yet). Every transaction
// that moves a message into or out of those sets adds what it changed, from
// the rows its statements touched (RowsAffected, RETURNING), to one row of
// the table as its last statement: the counts are exact at every commit,
// across replicas, and survive a crash with the transaction they belong to.
// The gauges read their sum, so their cost does not grow with the backlog.

// backlogShards is how many rows the counts are spread over on PostgreSQL:
// each transaction adds to one, picked at random, so replicas' concurrent
// transactions rarely wait for each other's row lock (and, updating one
// row as their last statement, never deadlock). SQLite has one writer and
// one row (shard 0).
const backlogShards = 16

// backlogDelta is what a transaction changes in the backlog counts.
type backlogDelta struct {
	waiting, initiated int64
}

func (d *backlogDelta) add(waiting, initiated int64) {
	d.waiting += waiting
	d.initiated += initiated
}

// The counts' write, an upsert: a shard row the migration did not create is
// created.
const (
	countBacklogSQLite = `INSERT INTO backlog_counts (shard, waiting, initiated) VALUES (?, ?, ?)
    ON CONFLICT (shard) DO UPDATE SET waiting = backlog_counts.waiting + excluded.waiting, initiated = backlog_counts.initiated + excluded.initiated`
	countBacklogPostgres = `INSERT INTO backlog_counts (shard, waiting, initiated) VALUES ($1, $2, $3)
    ON CONFLICT (shard) DO UPDATE SET waiting = backlog_counts.waiting + excluded.waiting, initiated = backlog_counts.initiated + excluded.initiated`
)

// countBacklog adds d to the counts in tx; call it last in tx (after every
// statement that may wait for a message row's lock).
func (s *Store) countBacklog(ctx context.Context, tx *sql.Tx, d backlogDelta) error {
	if d == (backlogDelta{}) {
		return nil
	}
	shard := 0
	if s.pg {
		shard = rand.IntN(backlogShards) //nolint:gosec // G404: spreading, not secret
	}
	q := countBacklogSQLite
	if s.pg {
		q = countBacklogPostgres
	}
	if _, err := tx.ExecContext(ctx, q, shard, d.waiting, d.initiated); err != nil {
		return fmt.Errorf("count backlog: %w", err)
	}
	return nil
}

// Backlog is what the queue holds, for the metrics.
type Backlog struct {
	Waiting   int64     // new messages
	OldestAt  time.Time // acceptance of the oldest new message (zero: none)
	Initiated int64     // handed out, not final
}

// oldestWaitingSQL finds the acceptance time of the waiting message with
// the lowest position without scanning the backlog: a loose index scan of
// the claim index (account_id, lane, pos, ...) WHERE status = 0 steps from
// one account to the next (one seek each), takes the first position of
// each (account, lane) (one seek each), and reads the lowest one's row.
// Its cost grows with the accounts that have messages waiting, not with
// the messages. The steps order by the claim index's own columns (account_id,
// lane, pos): ordered by account_id alone, PostgreSQL may walk the account
// index (account_id, pos) instead and filter out every handed-out and final
// message on the way (25 ms instead of 0.4 ms at 300,000 rows, a third of
// them handed out).
const oldestWaitingSQL = `WITH RECURSIVE accounts(id) AS (
    SELECT (SELECT account_id FROM messages WHERE status = 0 ORDER BY account_id, lane, pos LIMIT 1)
    UNION ALL
    SELECT (SELECT account_id FROM messages WHERE status = 0 AND account_id > a.id ORDER BY account_id, lane, pos LIMIT 1)
    FROM accounts a WHERE a.id IS NOT NULL
), firsts(pos) AS (
    SELECT (SELECT pos FROM messages WHERE status = 0 AND account_id = a.id AND lane = 0 ORDER BY pos LIMIT 1)
    FROM accounts a WHERE a.id IS NOT NULL
    UNION ALL
    SELECT (SELECT pos FROM messages WHERE status = 0 AND account_id = a.id AND lane = 1 ORDER BY pos LIMIT 1)
    FROM accounts a WHERE a.id IS NOT NULL
)
SELECT accepted_at FROM messages WHERE pos = (SELECT MIN(pos) FROM firsts)`

// Backlog reads the waiting and initiated counts (backlog_counts, exact as
// of the last commit) and finds the oldest waiting message
// (oldestWaitingSQL). Its cost grows with the accounts that have messages
// waiting, not with the backlog.
func (s *Store) Backlog(ctx context.Context) (Backlog, error) {
	var b Backlog
	db := s.readDB()
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(SUM(waiting), 0), COALESCE(SUM(initiated), 0) FROM backlog_counts").
		Scan(&b.Waiting, &b.Initiated); err != nil {
		return b, fmt.Errorf("backlog: %w", err)
	}
	var at any
	switch err := db.QueryRowContext(ctx, oldestWaitingSQL).Scan(&at); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return b, fmt.Errorf("backlog: oldest: %w", err)
	default:
		t, err := asTime(at)
		if err != nil {
			return b, fmt.Errorf("backlog: oldest: %w", err)
		}
		b.OldestAt = t
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
