package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apitosms/apitosms/services/queue/internal/domain"
)

// NewMessage is an accepted SMS to store with status new.
type NewMessage struct {
	Pos        int64
	AccountID  int64
	Hash       string
	Phone      string
	Text       string
	AcceptedAt time.Time
}

// Collision is a message stored under a replacement hash because another
// message already had its hash.
type Collision struct {
	Pos         int64
	Hash        string // the hash it was accepted with
	Replacement string // the hash it is stored and handed out under
}

// InsertResult says what an Insert changed.
type InsertResult struct {
	Inserted   int         // rows added (0 for a batch stored before)
	Collisions []Collision // messages stored under a replacement hash
}

const (
	insertColumns = 6
	// maxReplacements bounds the replacement hashes tried for one message.
	maxReplacements = 16
)

// chunkSizes are the row counts of the prepared INSERT statements, largest
// first; a batch is split greedily into chunks of these sizes. The largest
// stays far below SQLite's 32766 bind variables (and PostgreSQL's 65535).
// Prepared statements spare SQLite parsing a multi-thousand-parameter
// statement per call, which costs about as much as the inserting itself.
var chunkSizes = [...]int{512, 64, 8, 1}

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

// Insert stores msgs in one transaction with multi-row INSERTs. It is
// idempotent: a position already stored is left as it is, so redelivered
// events change nothing. A message whose hash another message already holds
// is stored under domain.ReplacementHash and listed in the result, so nothing
// accepted is ever lost. msgs is sorted by position in place; on equal
// hashes the earlier position keeps the hash.
func (in *Inserter) Insert(ctx context.Context, msgs []NewMessage) (InsertResult, error) {
	var res InsertResult
	if len(msgs) == 0 {
		return res, nil
	}
	if !slices.IsSortedFunc(msgs, byPos) {
		slices.SortFunc(msgs, byPos)
	}
	msgs = slices.CompactFunc(msgs, func(a, b NewMessage) bool { return a.Pos == b.Pos })

	// Prepare before the transaction: on SQLite it holds the only connection.
	if err := in.prepare(ctx); err != nil {
		return res, err
	}
	tx, err := in.s.sqlDB().BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("begin insert: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit

	for rest := msgs; len(rest) > 0; {
		k := 0
		for chunkSizes[k] > len(rest) {
			k++
		}
		n := chunkSizes[k]
		affected, err := in.exec(ctx, tx, k, rest[:n])
		if err != nil {
			return res, err
		}
		res.Inserted += int(affected)
		rest = rest[n:]
	}
	if res.Inserted < len(msgs) {
		// Either stored before (redelivery) or the hash was taken.
		if err := in.resolveCollisions(ctx, tx, msgs, &res); err != nil {
			return res, err
		}
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("commit insert: %w", err)
	}
	return res, nil
}

func byPos(a, b NewMessage) int { return cmp.Compare(a.Pos, b.Pos) }

// exec inserts rows (exactly chunkSizes[k] of them) with one statement and
// returns how many were added.
func (in *Inserter) exec(ctx context.Context, tx *sql.Tx, k int, rows []NewMessage) (int64, error) {
	in.args = in.args[:0]
	for i := range rows {
		m := &rows[i]
		in.args = append(in.args, m.Pos, m.AccountID, m.Hash, m.Phone, m.Text, in.timeArg(m.AcceptedAt))
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
	b.WriteString("INSERT INTO messages (pos, account_id, hash, phone, text, accepted_at) VALUES ")
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

// resolveCollisions finds the messages of msgs (sorted) whose position is
// not stored: their hash belonged to another message. Each is inserted under
// the first free replacement hash.
func (in *Inserter) resolveCollisions(ctx context.Context, tx *sql.Tx, msgs []NewMessage, res *InsertResult) error {
	q := "SELECT pos FROM messages WHERE pos BETWEEN " + in.s.param(1) + " AND " + in.s.param(2) + " ORDER BY pos"
	rows, err := tx.QueryContext(ctx, q, msgs[0].Pos, msgs[len(msgs)-1].Pos)
	if err != nil {
		return fmt.Errorf("find stored positions: %w", err)
	}
	var missing []NewMessage
	i := 0
	for rows.Next() {
		var pos int64
		if err := rows.Scan(&pos); err != nil {
			rows.Close()
			return fmt.Errorf("scan position: %w", err)
		}
		for ; i < len(msgs) && msgs[i].Pos < pos; i++ {
			missing = append(missing, msgs[i])
		}
		if i < len(msgs) && msgs[i].Pos == pos {
			i++
		}
	}
	missing = append(missing, msgs[i:]...)
	if err := rows.Close(); err != nil {
		return fmt.Errorf("find stored positions: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find stored positions: %w", err)
	}
	for _, m := range missing {
		c, err := in.insertReplaced(ctx, tx, m)
		if err != nil {
			return err
		}
		if c != nil {
			res.Inserted++
			res.Collisions = append(res.Collisions, *c)
		}
	}
	return nil
}

// insertReplaced stores m under its first free replacement hash. It returns
// nil when m's position turned out to be stored already (a concurrent
// redelivery on another replica).
func (in *Inserter) insertReplaced(ctx context.Context, tx *sql.Tx, m NewMessage) (*Collision, error) {
	hash := m.Hash
	exists := "SELECT COUNT(*) FROM messages WHERE pos = " + in.s.param(1)
	for range maxReplacements {
		hash = domain.ReplacementHash(hash, m.Pos)
		r := m
		r.Hash = hash
		n, err := in.exec(ctx, tx, len(chunkSizes)-1, []NewMessage{r})
		if err != nil {
			return nil, err
		}
		if n == 1 {
			return &Collision{Pos: m.Pos, Hash: m.Hash, Replacement: hash}, nil
		}
		var count int
		if err := tx.QueryRowContext(ctx, exists, m.Pos).Scan(&count); err != nil {
			return nil, fmt.Errorf("check position: %w", err)
		}
		if count > 0 {
			return nil, nil
		}
	}
	return nil, fmt.Errorf("message at position %d: no free replacement hash after %d tries", m.Pos, maxReplacements)
}
