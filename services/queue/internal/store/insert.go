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
	// maxBindVars is SQLite's limit on parameters per statement (PostgreSQL
	// allows 65535).
	maxBindVars = 32766
	// insertChunkRows is the most rows of one INSERT statement.
	insertChunkRows = maxBindVars / insertColumns
	// maxReplacements bounds the replacement hashes tried for one message.
	maxReplacements = 16
)

// Inserter stores batches of accepted messages, reusing its buffers between
// calls. It is not safe for concurrent use: give each consumer its own.
type Inserter struct {
	s       *Store
	args    []any
	sql     strings.Builder
	fullSQL string // statement for a full chunk, built once
	lastN   int    // rows of lastSQL
	lastSQL string // statement of the last partial chunk
}

// NewInserter returns an inserter on s.
func (s *Store) NewInserter() *Inserter { return &Inserter{s: s} }

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

	tx, err := in.s.sqlDB().BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("begin insert: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit

	for rest := msgs; len(rest) > 0; {
		n := min(len(rest), insertChunkRows)
		affected, err := in.exec(ctx, tx, rest[:n])
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

// exec inserts rows with one statement and returns how many were added.
func (in *Inserter) exec(ctx context.Context, tx *sql.Tx, rows []NewMessage) (int64, error) {
	in.args = in.args[:0]
	for i := range rows {
		m := &rows[i]
		in.args = append(in.args, m.Pos, m.AccountID, m.Hash, m.Phone, m.Text, m.AcceptedAt.UTC())
	}
	res, err := tx.ExecContext(ctx, in.statement(len(rows)), in.args...)
	clear(in.args) // drop references to the texts
	if err != nil {
		return 0, fmt.Errorf("insert messages: %w", err)
	}
	return res.RowsAffected()
}

// statement returns the INSERT of n rows; the full-chunk one is cached.
func (in *Inserter) statement(n int) string {
	if n == insertChunkRows && in.fullSQL != "" {
		return in.fullSQL
	}
	if n == in.lastN {
		return in.lastSQL
	}
	b := &in.sql
	b.Reset()
	b.Grow(80 + n*(insertColumns*7+3))
	b.WriteString("INSERT INTO messages (pos, account_id, hash, phone, text, accepted_at) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		in.s.placeholders(b, i*insertColumns+1, insertColumns)
		b.WriteByte(')')
	}
	b.WriteString(" ON CONFLICT DO NOTHING")
	q := b.String()
	if n == insertChunkRows {
		in.fullSQL = q
	} else {
		in.lastN, in.lastSQL = n, q
	}
	return q
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
		n, err := in.exec(ctx, tx, []NewMessage{r})
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
