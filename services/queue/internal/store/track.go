package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// More statuses (contract §9, §12).
const (
	StatusExpired   = 4
	StatusCancelled = 5
)

// Errors of Cancel.
var (
	ErrNotFound       = errors.New("message not found")
	ErrNotCancellable = errors.New("message already handed out")
)

// Tracked is one message as tracking (contract §9) shows it. Nil times and
// an empty Device are not known yet.
type Tracked struct {
	Pos        int64
	AccountID  int64
	Phone      string
	Text       string
	Status     int
	AcceptedAt time.Time
	ClaimedAt  *time.Time
	FinishedAt *time.Time
	Device     string
	Attempts   int
	// Contract §12, when given: Unix milliseconds (0: none), priority.
	SendAt     int64
	ValidUntil int64
	High       bool
}

// trackColumns are the columns scanTracked reads, from trackFrom. How a
// message ended (status, device, time) is in outcomes when it has ended
// there; a message handed out before hand-outs were counted (or by a claim
// that does not count them) has been handed out at least once.
// A scheduled message (status -1) shows as new.
const trackColumns = `m.pos, m.account_id, m.phone, m.text, ` + trackStatus + `, m.accepted_at, m.claimed_at,
o.finished_at, COALESCE(o.device, ''), CASE WHEN m.attempts = 0 AND m.claimed_at IS NOT NULL THEN 1 ELSE m.attempts END,
COALESCE(m.send_at, 0), COALESCE(m.valid_until, 0), m.lane`

var trackFrom = trackFromTable("messages")

// trackFromTable is trackFrom on table: messages or scheduled (scheduled.go),
// whose rows have the same columns.
func trackFromTable(table string) string {
	return " FROM " + table + " m LEFT JOIN outcomes o ON o.pos = m.pos"
}

// trackStatus is a message's status as tracking shows it.
const trackStatus = "COALESCE(o.status, CASE WHEN m.status < 0 THEN 0 ELSE m.status END)"

// UseReader makes the tracking reads (Lookup, History) use db, a read-only
// pool on the same database (database.OpenReader): on SQLite the writer's
// one connection is busy for the whole of every commit, and lookups must not
// queue behind ingestion, claims and reports, nor delay them.
func (s *Store) UseReader(db *bun.DB) {
	if db != nil {
		s.reader = db.DB
	}
}

// SetKeepText chooses whether a message keeps its text once final
// (APITOSMS_KEEP_TEXT); when not, reports and cancels blank it.
func (s *Store) SetKeepText(keep bool) { s.blankText = !keep }

func (s *Store) readDB() *sql.DB {
	if s.reader != nil {
		return s.reader
	}
	return s.db.DB
}

// Lookup returns the account's messages among positions (at most
// lookupChunk per statement, any number in all), in no particular order;
// unknown positions and other accounts' messages are left out.
func (s *Store) Lookup(ctx context.Context, accountID int64, positions []int64) ([]Tracked, error) {
	var out []Tracked
	var b strings.Builder
	args := make([]any, 0, 2*(lookupChunk+1))
	for rest := positions; len(rest) > 0; {
		n := min(len(rest), lookupChunk)
		args = append(args[:0], accountID)
		for _, p := range rest[:n] {
			args = append(args, p)
		}
		args = append(args, args...) // the scheduled arm's
		rows, err := s.readDB().QueryContext(ctx, s.lookupSQL(&b, n), args...)
		if out, err = scanTracked(rows, err, out); err != nil {
			return nil, fmt.Errorf("lookup: %w", err)
		}
		rest = rest[n:]
	}
	return out, nil
}

const lookupChunk = 1000

// lookupSQL is the SELECT of n positions of one account, from messages and
// scheduled in one statement (one snapshot: a message being moved is found
// once); its parameters are the account and the positions, twice.
// +account_id keeps the planner on the primary key rather than an account
// index.
func (s *Store) lookupSQL(b *strings.Builder, n int) string {
	b.Reset()
	for i, table := range []string{"messages", "scheduled"} {
		first := i * (n + 1)
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT " + trackColumns + trackFromTable(table) + " WHERE +m.account_id = " + s.param(first+1) + " AND m.pos IN (")
		s.placeholders(b, first+2, n)
		b.WriteByte(')')
	}
	return b.String()
}

// HistoryQuery selects messages of one account for History.
type HistoryQuery struct {
	AccountID int64
	Before    int64 // only positions below it
	Limit     int
	Statuses  []int      // any of them; empty: all
	Phone     string     // exact; empty: all
	From, To  *time.Time // accepted in [From, To); nil: unbounded
}

// History returns up to q.Limit of the account's messages below q.Before
// matching q, newest (highest position) first, walking the account index
// (account_id, pos) backwards. Paging by position is stable: a message
// stored later has a higher position than every message already shown,
// as long as Before starts at or below what ingestion has stored.
func (s *Store) History(ctx context.Context, q HistoryQuery) ([]Tracked, error) {
	query, args := s.historySQL(q)
	rows, err := s.readDB().QueryContext(ctx, query, args...)
	out, err := scanTracked(rows, err, nil)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return out, nil
}

// historySQL is the statement and arguments of History: the newest
// q.Limit of messages and of scheduled, merged in one statement (one
// snapshot, so a message being moved shows once).
func (s *Store) historySQL(q HistoryQuery) (string, []any) {
	var b strings.Builder
	var args []any
	for i, table := range []string{"messages", "scheduled"} {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT * FROM (")
		args = s.historyArm(&b, q, table, args)
		b.WriteString(") h" + table)
	}
	args = append(args, q.Limit)
	b.WriteString(" ORDER BY 1 DESC LIMIT " + s.param(len(args)))
	return b.String(), args
}

// historyArm writes History's SELECT from table (newest q.Limit first),
// numbering its parameters after args, and returns args with them.
func (s *Store) historyArm(b *strings.Builder, q HistoryQuery, table string, args []any) []any {
	args = append(args, q.AccountID, q.Before)
	b.WriteString("SELECT " + trackColumns + trackFromTable(table) + " WHERE m.account_id = " + s.param(len(args)-1) + " AND m.pos < " + s.param(len(args)))
	if len(q.Statuses) > 0 {
		b.WriteString(" AND " + trackStatus + " IN (")
		s.placeholders(b, len(args)+1, len(q.Statuses))
		b.WriteByte(')')
		for _, st := range q.Statuses {
			args = append(args, st)
		}
	}
	if q.Phone != "" {
		args = append(args, q.Phone)
		b.WriteString(" AND m.phone = " + s.param(len(args)))
	}
	if q.From != nil {
		args = append(args, s.timeParam(*q.From))
		b.WriteString(" AND m.accepted_at >= " + s.param(len(args)))
	}
	if q.To != nil {
		args = append(args, s.timeParam(*q.To))
		b.WriteString(" AND m.accepted_at < " + s.param(len(args)))
	}
	args = append(args, q.Limit)
	b.WriteString(" ORDER BY m.pos DESC LIMIT " + s.param(len(args)))
	return args
}

// timeParam is t as stored: SQLite compares the driver's text layout.
func (s *Store) timeParam(t time.Time) any {
	if s.pg {
		return t.UTC()
	}
	return t.UTC().Format(sqliteTimeLayout)
}

// Cancel sets the account's message at pos cancelled if it is still new
// (or scheduled: moved into messages as cancelled), records when, and marks its quota to be given back (TakeRefunds). It
// returns the cancelled message; ErrNotFound when the account has no message
// there; ErrNotCancellable when it was handed out or is final. It guards the
// row as claims do: on PostgreSQL the UPDATE waits for a claim holding the
// row and then finds it no longer new, and a claim skips the row while a
// cancel holds it; SQLite has one writer. So a message is either handed out
// or cancelled, never both.
func (s *Store) Cancel(ctx context.Context, accountID, pos int64, now time.Time) (Tracked, error) {
	text := ""
	if s.blankText {
		text = ", text = ''"
	}
	// Constant SQL and placeholders only: values go as arguments.
	update := "UPDATE messages SET status = " + s.param(1) + ", refund = 1" + text + //nolint:gosec // G202: see above
		" WHERE pos = " + s.param(2) + " AND +account_id = " + s.param(3) + " AND +status <= 0"
	outcome := "INSERT INTO outcomes (pos, status, finished_at) VALUES (" + s.param(1) + ", " + s.param(2) + ", " + s.param(3) + ") ON CONFLICT DO NOTHING" //nolint:gosec // G202: as above
	read := "SELECT " + trackColumns + trackFrom + " WHERE m.pos = " + s.param(1) + " AND +m.account_id = " + s.param(2)                                    //nolint:gosec // G202: as above
	var out Tracked
	err := s.trackTx(ctx, func(tx *sql.Tx, d *backlogDelta) error {
		// A scheduled message first: a promotion holding it moves it before
		// the UPDATE below (a statement of its own) looks in messages.
		moved, err := s.moveScheduled(ctx, tx, d, s.pickOne(), []any{pos, accountID}, StatusCancelled, 1)
		if err != nil {
			return err
		}
		n := int64(len(moved))
		if n == 0 {
			res, err := tx.ExecContext(ctx, update, StatusCancelled, pos, accountID)
			if err != nil {
				return err
			}
			if n, err = res.RowsAffected(); err != nil {
				return err
			}
			d.add(-n, 0) // a waiting message (messages holds no scheduled ones)
		}
		if n == 1 {
			if _, err := tx.ExecContext(ctx, outcome, pos, StatusCancelled, s.timeParam(now)); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, read, pos, accountID)
		got, err := scanTracked(rows, err, nil)
		switch {
		case err != nil:
			return err
		case len(got) == 0:
			return ErrNotFound
		case n == 0:
			return ErrNotCancellable
		}
		out = got[0]
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrNotCancellable) {
		return Tracked{}, fmt.Errorf("cancel: %w", err)
	}
	return out, err
}

// Refund is quota to give back: Count messages of AccountID accepted in
// Month (billing's calendar month, UTC), at Positions.
type Refund struct {
	AccountID int64
	Month     string
	Positions []int64
}

// PendingRefunds lists up to limit positions of cancelled messages whose
// quota is not given back yet, oldest first.
func (s *Store) PendingRefunds(ctx context.Context, limit int) ([]int64, error) {
	rows, err := s.sqlDB().QueryContext(ctx, "SELECT pos FROM messages WHERE refund = 1 ORDER BY pos LIMIT "+s.param(1), limit)
	if err != nil {
		return nil, fmt.Errorf("pending refunds: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("pending refunds: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// PendingRefundMessages returns the messages among positions whose refund
// is still pending (cancelled or expired, quota not given back yet), as
// tracking shows them.
func (s *Store) PendingRefundMessages(ctx context.Context, positions []int64) ([]Tracked, error) {
	var out []Tracked
	var b strings.Builder
	for rest := positions; len(rest) > 0; {
		n := min(len(rest), lookupChunk)
		b.Reset()
		b.WriteString("SELECT " + trackColumns + trackFrom + " WHERE m.refund = 1 AND m.pos IN (")
		s.placeholders(&b, 1, n)
		b.WriteByte(')')
		args := make([]any, n)
		for i, p := range rest[:n] {
			args[i] = p
		}
		rows, err := s.sqlDB().QueryContext(ctx, b.String(), args...)
		if out, err = scanTracked(rows, err, out); err != nil {
			return nil, fmt.Errorf("pending refund messages: %w", err)
		}
		rest = rest[n:]
	}
	return out, nil
}

// TakeRefunds takes the refunds still pending among positions, grouped by
// account and month: each is taken by exactly one caller (replicas sweep
// concurrently), so quota is never given back twice. A caller that cannot
// give a refund back must ReturnRefunds it.
func (s *Store) TakeRefunds(ctx context.Context, positions []int64) ([]Refund, error) {
	if len(positions) == 0 {
		return nil, nil
	}
	var b strings.Builder
	b.WriteString("UPDATE messages SET refund = 0 WHERE refund = 1 AND pos IN (")
	s.placeholders(&b, 1, len(positions))
	b.WriteString(") RETURNING pos, account_id, accepted_at")
	args := make([]any, len(positions))
	for i, p := range positions {
		args[i] = p
	}
	var out []Refund
	err := s.trackTx(ctx, func(tx *sql.Tx, _ *backlogDelta) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, b.String(), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		index := map[[2]any]int{}
		for rows.Next() {
			var pos, account int64
			var at any
			if err := rows.Scan(&pos, &account, &at); err != nil {
				return err
			}
			t, err := asTime(at)
			if err != nil {
				return err
			}
			month := t.UTC().Format("2006-01")
			k := [2]any{account, month}
			i, ok := index[k]
			if !ok {
				i = len(out)
				index[k] = i
				out = append(out, Refund{AccountID: account, Month: month})
			}
			out[i].Positions = append(out[i].Positions, pos)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("take refunds: %w", err)
	}
	return out, nil
}

// ReturnRefunds marks positions' refunds pending again (giving them back
// failed).
func (s *Store) ReturnRefunds(ctx context.Context, positions []int64) error {
	if len(positions) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("UPDATE messages SET refund = 1 WHERE pos IN (")
	s.placeholders(&b, 1, len(positions))
	b.WriteByte(')')
	args := make([]any, len(positions))
	for i, p := range positions {
		args[i] = p
	}
	if _, err := s.sqlDB().ExecContext(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("return refunds: %w", err)
	}
	return nil
}

// sweepChunk is the rows read (and at most deleted) per sweep statement.
const sweepChunk = 1000

// sweepSlack is how far acceptance times may run out of position order
// (ingress replicas' clocks, coalesced publishes): the sweep reads that far
// past the cutoff before it stops.
const sweepSlack = time.Hour

// SweepRetention removes the final messages (those with an outcome: sent, failed,
// cancelled with their quota given back, expired) that became final before
// cutoff, with their outcomes, oldest first, a
// chunk per transaction, and returns how many it removed. It reads from the
// oldest position up to the first message accepted after cutoff (plus
// sweepSlack): a message final before cutoff was accepted before it. The
// deletes re-check their condition, so sweeps running at once on several
// replicas remove each message once and never one that changed meanwhile.
func (s *Store) SweepRetention(ctx context.Context, cutoff time.Time) (int64, error) {
	if s.pg {
		// One replica sweeps at a time (the others skip their turn): the
		// deletes would be safe together, the duplicated reads are waste.
		// The lock belongs to a transaction held open meanwhile (it holds
		// nothing else), so it is released whatever happens.
		lock, err := s.sqlDB().BeginTx(ctx, nil)
		if err != nil {
			return 0, fmt.Errorf("sweep: %w", err)
		}
		defer lock.Rollback() //nolint:errcheck // releases the lock
		var locked bool
		if err := lock.QueryRowContext(ctx, "SELECT pg_try_advisory_xact_lock($1)", sweepLockKey).Scan(&locked); err != nil {
			return 0, fmt.Errorf("sweep lock: %w", err)
		}
		if !locked {
			return 0, nil
		}
	}
	return s.sweep(ctx, cutoff)
}

// sweepLockKey is the PostgreSQL advisory lock of the retention sweep.
const sweepLockKey int64 = 0x61706974_7377ee01

func (s *Store) sweep(ctx context.Context, cutoff time.Time) (int64, error) {
	var removed int64
	after := int64(0)
	stop := cutoff.Add(sweepSlack)
	for {
		rows, err := s.readDB().QueryContext(ctx, "SELECT m.pos, m.refund, m.accepted_at, o.finished_at"+trackFrom+
			" WHERE m.pos > "+s.param(1)+" ORDER BY m.pos LIMIT "+s.param(2), after, sweepChunk)
		if err != nil {
			return removed, fmt.Errorf("sweep: %w", err)
		}
		var doomed []any
		n, done := 0, false
		for rows.Next() {
			var pos int64
			var refund int
			var accepted, finished any
			if err := rows.Scan(&pos, &refund, &accepted, &finished); err != nil {
				rows.Close()
				return removed, fmt.Errorf("sweep: %w", err)
			}
			n++
			after = pos
			at, err := asTime(accepted)
			if err != nil {
				rows.Close()
				return removed, fmt.Errorf("sweep: %w", err)
			}
			if !at.Before(stop) {
				done = true
				break
			}
			if refund == 0 && finished != nil {
				if ft, err := asTime(finished); err == nil && ft.Before(cutoff) {
					doomed = append(doomed, pos)
				}
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return removed, fmt.Errorf("sweep: %w", err)
		}
		if len(doomed) > 0 {
			k, err := s.remove(ctx, doomed)
			if err != nil {
				return removed, fmt.Errorf("sweep: %w", err)
			}
			removed += k
		}
		if done || n < sweepChunk {
			return removed, nil
		}
	}
}

// remove deletes the final messages at positions (and their outcomes) in
// one transaction, except those whose quota is still to be given back. An
// outcome is never changed nor removed while its message stays, so the
// sweep's reading of it still holds. A message with an outcome is final,
// or initiated and reported (not counted as initiated), or, if a report
// raced a requeue, waiting: that one leaves the waiting count.
func (s *Store) remove(ctx context.Context, positions []any) (int64, error) {
	var b strings.Builder
	b.WriteString("DELETE FROM messages WHERE refund = 0 AND pos IN (")
	s.placeholders(&b, 1, len(positions))
	b.WriteString(") AND EXISTS (SELECT 1 FROM outcomes o WHERE o.pos = messages.pos) RETURNING status")
	var removed int64
	err := s.trackTx(ctx, func(tx *sql.Tx, d *backlogDelta) error {
		statuses, err := scanPositions(tx.QueryContext(ctx, b.String(), positions...))
		if err != nil {
			return err
		}
		removed = int64(len(statuses))
		for _, st := range statuses {
			if st == StatusNew {
				d.add(-1, 0)
			}
		}
		b.Reset()
		b.WriteString("DELETE FROM outcomes WHERE pos IN (")
		s.placeholders(&b, 1, len(positions))
		b.WriteString(") AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.pos = outcomes.pos)")
		_, err = tx.ExecContext(ctx, b.String(), positions...)
		return err
	})
	return removed, err
}

// trackTx runs fn in a transaction (immediate on SQLite), adds what fn put
// in its backlogDelta to the backlog counts, and commits.
func (s *Store) trackTx(ctx context.Context, fn func(tx *sql.Tx, d *backlogDelta) error) error {
	tx, err := s.sqlDB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	var d backlogDelta
	if err := fn(tx, &d); err != nil {
		return err
	}
	if err := s.countBacklog(ctx, tx, d); err != nil {
		return err
	}
	return tx.Commit()
}

// scanTracked appends the rows (trackColumns) to out.
func scanTracked(rows *sql.Rows, err error, list []Tracked) ([]Tracked, error) {
	if err != nil {
		return list, err
	}
	defer rows.Close()
	for rows.Next() {
		var t Tracked
		var accepted, claimed, finished any
		var lane int
		if err := rows.Scan(&t.Pos, &t.AccountID, &t.Phone, &t.Text, &t.Status, &accepted, &claimed, &finished, &t.Device, &t.Attempts,
			&t.SendAt, &t.ValidUntil, &lane); err != nil {
			return list, err
		}
		t.High = lane == 0
		if t.AcceptedAt, err = asTime(accepted); err != nil {
			return list, err
		}
		if t.ClaimedAt, err = asTimePtr(claimed); err != nil {
			return list, err
		}
		if t.FinishedAt, err = asTimePtr(finished); err != nil {
			return list, err
		}
		list = append(list, t)
	}
	return list, rows.Err()
}

// asTime reads a timestamp column: a time.Time from PostgreSQL (and from
// SQLite for declared TIMESTAMP columns), or the text SQLite stored.
func asTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t.UTC(), nil
	case string:
		return parseSQLiteTime(t)
	case []byte:
		return parseSQLiteTime(string(t))
	}
	return time.Time{}, fmt.Errorf("unexpected timestamp %T", v)
}

func asTimePtr(v any) (*time.Time, error) {
	if v == nil {
		return nil, nil
	}
	t, err := asTime(v)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func parseSQLiteTime(s string) (time.Time, error) {
	for _, layout := range []string{sqliteTimeLayout, "2006-01-02 15:04:05.999999999Z07:00", time.RFC3339Nano, "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unreadable timestamp %q", s)
}
