package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// NewMessage is an accepted SMS to store with status new.
type NewMessage struct {
	Pos        int64
	AccountID  int64
	Phone      string
	Text       string
	AcceptedAt time.Time
	// Contract §12, when given: Unix milliseconds (0: none), priority lane.
	SendAt     int64
	ValidUntil int64
	High       bool
}

// plain reports whether m has none of the §12 fields (the Part 1 fast path).
func (m *NewMessage) plain() bool { return m.SendAt == 0 && m.ValidUntil == 0 && !m.High }

const insertColumns = 5

// chunkSizes are the row counts of the prepared INSERT statements, largest
// first; a batch is split greedily into chunks of these sizes. The largest
// stays far below SQLite's 32766 bind variables (and PostgreSQL's 65535).
// Prepared statements spare SQLite parsing a multi-thousand-parameter
// statement per call, which costs about as much as the inserting itself.
// Powers of two: a window of n rows runs one statement per set bit of n
// (below 512), where 512/64/8/1 ran up to 7+7+7 statements (a window of 15
// one-message requests: 8, then seven of one), each a run of its own.
var chunkSizes = [...]int{512, 256, 128, 64, 32, 16, 8, 4, 2, 1}

// sqliteTimeLayout is how times are stored in SQLite text columns (the
// driver's own layout, which bun parses back).
const sqliteTimeLayout = "2006-01-02 15:04:05.999999999-07:00"

// Inserter stores batches of accepted messages, reusing its buffers and
// prepared statements between calls. It is not safe for concurrent use: give
// each consumer its own, and Close it when done.
type Inserter struct {
	s     *Store
	args  []any
	stmts [len(chunkSizes)]*sql.Stmt
	// The acceptance time of consecutive rows is usually the same: format it
	// once (SQLite stores text).
	lastAt    time.Time
	lastAtArg any
}

// NewInserter returns an inserter on s.
func (s *Store) NewInserter() *Inserter { return &Inserter{s: s} }

// Close releases the prepared statements.
func (in *Inserter) Close() error {
	var first error
	for i, st := range in.stmts {
		if st != nil {
			if err := st.Close(); err != nil && first == nil {
				first = err
			}
			in.stmts[i] = nil
		}
	}
	return first
}

// Insert stores msgs in one transaction with multi-row INSERTs and returns
// how many rows it added. It is idempotent: a position already stored is
// left as it is, so redelivered events change nothing. msgs is sorted by
// position in place.
func (in *Inserter) Insert(ctx context.Context, msgs []NewMessage) (int, error) {
	inserted := 0
	if len(msgs) == 0 {
		return 0, nil
	}
	if !slices.IsSortedFunc(msgs, byPos) {
		slices.SortFunc(msgs, byPos)
	}
	msgs = slices.CompactFunc(msgs, func(a, b NewMessage) bool { return a.Pos == b.Pos })

	// Prepare before the transaction: on SQLite it holds the only connection.
	if err := in.prepare(ctx); err != nil {
		return 0, err
	}
	tx, err := in.s.sqlDB().BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin insert: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit

	// Messages with §12 fields are rare: store them apart, so the prepared
	// Part 1 statements keep their five columns.
	var extra []NewMessage
	plain := msgs
	for i := range msgs {
		if !msgs[i].plain() {
			plain = make([]NewMessage, 0, len(msgs))
			for _, m := range msgs {
				if m.plain() {
					plain = append(plain, m)
				} else {
					extra = append(extra, m)
				}
			}
			break
		}
	}
	var d backlogDelta
	if len(extra) > 0 {
		added, waiting, err := in.insertExtras(ctx, tx, extra, time.Now())
		if err != nil {
			return 0, err
		}
		inserted += added
		d.add(waiting, 0)
	}
	for rest := plain; len(rest) > 0; {
		k := 0
		for chunkSizes[k] > len(rest) {
			k++
		}
		n := chunkSizes[k]
		affected, err := in.exec(ctx, tx, k, rest[:n])
		if err != nil {
			return 0, err
		}
		inserted += int(affected)
		d.add(affected, 0)
		rest = rest[n:]
	}
	if err := in.s.countBacklog(ctx, tx, d); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit insert: %w", err)
	}
	return inserted, nil
}

func byPos(a, b NewMessage) int { return cmp.Compare(a.Pos, b.Pos) }

// exec inserts rows (exactly chunkSizes[k] of them) with one statement and
// returns how many were added.
func (in *Inserter) exec(ctx context.Context, tx *sql.Tx, k int, rows []NewMessage) (int64, error) {
	in.args = in.args[:0]
	for i := range rows {
		m := &rows[i]
		in.args = append(in.args, m.Pos, m.AccountID, m.Phone, m.Text, in.timeArg(m.AcceptedAt))
	}
	res, err := tx.StmtContext(ctx, in.stmts[k]).ExecContext(ctx, in.args...)
	clear(in.args) // drop references to the texts
	if err != nil {
		return 0, fmt.Errorf("insert messages: %w", err)
	}
	return res.RowsAffected()
}

// timeArg is the parameter for acceptance time t.
func (in *Inserter) timeArg(t time.Time) any {
	if in.lastAtArg == nil || !t.Equal(in.lastAt) {
		in.lastAt = t
		if in.s.pg {
			in.lastAtArg = t.UTC()
		} else {
			in.lastAtArg = t.UTC().Format(sqliteTimeLayout)
		}
	}
	return in.lastAtArg
}

// prepare prepares the INSERT statements not prepared yet.
func (in *Inserter) prepare(ctx context.Context) error {
	for k, n := range chunkSizes {
		if in.stmts[k] != nil {
			continue
		}
		st, err := in.s.sqlDB().PrepareContext(ctx, in.insertSQL(n))
		if err != nil {
			return fmt.Errorf("prepare insert of %d rows: %w", n, err)
		}
		in.stmts[k] = st
	}
	return nil
}

// insertSQL is the INSERT of n rows.
func (in *Inserter) insertSQL(n int) string {
	var b strings.Builder
	b.Grow(100 + n*(insertColumns*7+3))
	b.WriteString("INSERT INTO messages (pos, account_id, phone, text, accepted_at) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		in.s.placeholders(&b, i*insertColumns+1, insertColumns)
		b.WriteByte(')')
	}
	b.WriteString(" ON CONFLICT DO NOTHING")
	return b.String()
}

// extraColumns are the columns of a message with §12 fields.
const extraColumns = 9

// insertExtras stores messages with §12 fields: one due later than now
// is scheduled (status -1, in the scheduled table until Promote moves it
// into messages when due); lane 0 is high priority. It returns how many
// were added, and how many of them wait (added to messages).
func (in *Inserter) insertExtras(ctx context.Context, tx *sql.Tx, msgs []NewMessage, now time.Time) (added int, waiting int64, err error) {
	var due, later []NewMessage
	for _, m := range msgs {
		if m.SendAt > now.UnixMilli() {
			later = append(later, m)
		} else {
			due = append(due, m)
		}
	}
	// A redelivered message keeps the row it got first, in either table
	// (ON CONFLICT sees only its own table).
	if due, err = in.s.dropStored(ctx, tx, "scheduled", due); err != nil {
		return 0, 0, err
	}
	if later, err = in.s.dropStored(ctx, tx, "messages", later); err != nil {
		return 0, 0, err
	}
	if added, err = in.insertInto(ctx, tx, "messages", due, StatusNew); err != nil {
		return 0, 0, err
	}
	more, err := in.insertInto(ctx, tx, "scheduled", later, StatusScheduled)
	return added + more, int64(added), err
}

// insertInto stores msgs in table (messages or scheduled) with status.
func (in *Inserter) insertInto(ctx context.Context, tx *sql.Tx, table string, msgs []NewMessage, status int) (int, error) {
	added := 0
	var b strings.Builder
	for rest := msgs; len(rest) > 0; {
		n := min(len(rest), chunkSizes[0])
		b.Reset()
		b.WriteString("INSERT INTO " + table + " (pos, account_id, phone, text, accepted_at, status, send_at, valid_until, lane) VALUES ")
		args := make([]any, 0, n*extraColumns)
		for i, m := range rest[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			in.s.placeholders(&b, i*extraColumns+1, extraColumns)
			b.WriteByte(')')
			lane := 1
			if m.High {
				lane = 0
			}
			args = append(args, m.Pos, m.AccountID, m.Phone, m.Text, in.timeArg(m.AcceptedAt), status,
				nullMs(m.SendAt), nullMs(m.ValidUntil), lane)
		}
		b.WriteString(" ON CONFLICT DO NOTHING")
		res, err := tx.ExecContext(ctx, b.String(), args...)
		if err != nil {
			return 0, fmt.Errorf("insert %s: %w", table, err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("insert %s: %w", table, err)
		}
		added += int(k)
		rest = rest[n:]
	}
	return added, nil
}

// dropStored returns msgs without those whose position table (messages or
// scheduled) holds.
func (s *Store) dropStored(ctx context.Context, tx *sql.Tx, table string, msgs []NewMessage) ([]NewMessage, error) {
	stored := map[int64]bool{}
	var b strings.Builder
	for rest := msgs; len(rest) > 0; {
		n := min(len(rest), lookupChunk)
		b.Reset()
		b.WriteString("SELECT pos FROM " + table + " WHERE pos IN (")
		s.placeholders(&b, 1, n)
		b.WriteByte(')')
		args := make([]any, n)
		for i := range rest[:n] {
			args[i] = rest[i].Pos
		}
		found, err := scanPositions(tx.QueryContext(ctx, b.String(), args...))
		if err != nil {
			return nil, fmt.Errorf("insert messages: %w", err)
		}
		for _, p := range found {
			stored[p] = true
		}
		rest = rest[n:]
	}
	if len(stored) == 0 {
		return msgs, nil
	}
	return slices.DeleteFunc(msgs, func(m NewMessage) bool { return stored[m.Pos] }), nil
}

// nullMs is a Unix-millisecond parameter, NULL for 0.
func nullMs(ms int64) any {
	if ms == 0 {
		return nil
	}
	return ms
}
