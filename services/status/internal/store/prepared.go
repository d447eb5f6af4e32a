package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/apitosms/apitosms/libs/database"
)

// The report statements (and the ingest consumer's inserts) on SQLite, prepared once on the writer's single
// connection. bun inlines arguments (the IN list of positions above all)
// into the SQL text, so SQLite parsed each statement anew: about 4.5% of
// the server's CPU in the paced phone fleet (1,000 phones reporting 20 at a
// time). Here the positions are one JSON array argument (json_each), so the
// text never changes. PostgreSQL has its own fixed texts (postgres.go).
const (
	markFinalSQLite = `UPDATE deliveries SET status = ?, device = ?, reported_at = ?
		WHERE account_id = ? AND pos IN (SELECT value FROM json_each(?)) AND status < ? RETURNING pos`
	statusesSQLite  = `SELECT pos, status FROM deliveries WHERE account_id = ? AND pos IN (SELECT value FROM json_each(?))`
	addOutboxSQLite = `INSERT INTO reported_outbox (payload, created_ms) VALUES (?, ?) RETURNING id`
	delOutboxSQLite = `DELETE FROM reported_outbox WHERE id IN (SELECT value FROM json_each(?))`
)

// bunTime is how bun writes a time into SQLite's text (schema.BaseDialect),
// so a bound reported_at reads back exactly as an inlined one did.
const bunTime = "2006-01-02 15:04:05.999999-07:00"

// sqliteStmts holds the prepared statements; nil on PostgreSQL.
type sqliteStmts struct {
	mu                                        sync.Mutex
	markFinal, statuses, addOutbox, delOutbox *sql.Stmt
	// ingest[i] inserts ingestChunks[i] rows (ingest.go).
	ingest [len(ingestChunks)]*sql.Stmt
}

// ingestChunks are the row counts of the ingest consumer's prepared
// inserts, largest first: a window of n rows runs n/256 statements of 256
// rows, then one of each power of two in the rest (at most eight). The
// multi-row text differed with every window's size, so SQLite parsed it
// anew each time (half of the insert's CPU for a window of eight rows). The
// rows stay bound integers: one JSON argument (as above) cost more CPU than
// the parse for windows of 1000 rows, json_each decoding every row.
var ingestChunks = [...]int{256, 128, 64, 32, 16, 8, 4, 2, 1}

// prepare prepares the statements on first use. It must run outside a
// transaction: the writer pool has one connection, which a transaction
// holds until it ends.
func (p *sqliteStmts) prepare(ctx context.Context, db *sql.DB) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := []struct {
		dst   **sql.Stmt
		query string
	}{{&p.markFinal, markFinalSQLite}, {&p.statuses, statusesSQLite}, {&p.addOutbox, addOutboxSQLite}, {&p.delOutbox, delOutboxSQLite}}
	for i, n := range ingestChunks {
		list = append(list, struct {
			dst   **sql.Stmt
			query string
		}{&p.ingest[i], insertSQL(false, n)})
	}
	for _, s := range list {
		if *s.dst != nil {
			continue
		}
		st, err := db.PrepareContext(ctx, s.query)
		if err != nil {
			return fmt.Errorf("prepare statement: %w", err)
		}
		*s.dst = st
	}
	return nil
}

// markFinalPrepared is MarkFinal on SQLite.
func (q *Queries) markFinalPrepared(ctx context.Context, accountID int64, positions []int64, status int, device string, reportedAt time.Time) ([]int64, error) {
	return changedPositions(q.tx.StmtContext(ctx, q.stmts.markFinal).QueryContext(ctx,
		status, device, reportedAt.UTC().Format(bunTime), accountID, database.JSONInts(positions), finalFrom))
}

// ingestPrepared is Ingest's insert on SQLite, in tx: rows in order, in
// chunks of ingestChunks.
func (p *sqliteStmts) ingestPrepared(ctx context.Context, tx *sql.Tx, rows []Row) error {
	args := make([]any, 0, 2*min(len(rows), ingestChunks[0]))
	for i, n := range ingestChunks {
		if len(rows) < n {
			continue
		}
		st := tx.StmtContext(ctx, p.ingest[i])
		for ; len(rows) >= n; rows = rows[n:] {
			args = args[:0]
			for _, r := range rows[:n] {
				args = append(args, r.Pos, r.AccountID)
			}
			if _, err := st.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("insert deliveries: %w", err)
			}
		}
	}
	return nil
}
