package store

import (
	"context"
	"fmt"
	"strings"
)

// Report is a final status (StatusSent or StatusFailed) the status service
// applied to the account's message with this hash.
type Report struct {
	AccountID int64
	Hash      string
	Status    int
	Pos       int64 // FIFO position, the row's key; 0: find the row by Hash
}

// reportChunk bounds the hashes of one UPDATE statement.
const reportChunk = 1000

// ApplyReports sets each reported message of its account that is still new
// to its final status, in one transaction, so it is never handed out.
// Initiated messages are left alone (they are never handed out again, and
// skipping them spares a random page write per report: the common case);
// so are messages already final, unknown hashes and other accounts' messages; reports with a status other than sent or
// failed are ignored. It is idempotent and returns the rows changed and how
// many reported hashes have no row at all (not ingested yet).
func (s *Store) ApplyReports(ctx context.Context, reports []Report) (changed, missing int64, err error) {
	type key struct {
		account int64
		status  int
		byPos   bool
	}
	groups := make(map[key][]any)
	var order []key
	for _, r := range reports {
		if r.Status != StatusSent && r.Status != StatusFailed {
			continue
		}
		// The position finds the row through the table's own key: messages
		// handed out together share pages, while hashes are spread at random
		// over the hash index.
		k := key{r.AccountID, r.Status, r.Pos > 0}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		if k.byPos {
			groups[k] = append(groups[k], r.Pos)
		} else {
			groups[k] = append(groups[k], r.Hash)
		}
	}
	if len(order) == 0 {
		return 0, 0, nil
	}
	tx, err := s.sqlDB().BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("begin reports: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	var b strings.Builder
	args := make([]any, 0, reportChunk+2)
	for _, k := range order {
		column := "hash"
		if k.byPos {
			column = "pos"
		}
		for keys := groups[k]; len(keys) > 0; {
			n := min(len(keys), reportChunk)
			args = append(append(args[:0], k.status, k.account), keys[:n]...)
			res, err := tx.ExecContext(ctx, s.reportSQL(&b, column, n), args...)
			if err != nil {
				return 0, 0, fmt.Errorf("apply reports: %w", err)
			}
			affected, err := res.RowsAffected()
			if err != nil {
				return 0, 0, fmt.Errorf("apply reports: %w", err)
			}
			changed += affected
			// Rows of any status count as present; only absent ones are missing.
			b.Reset()
			b.WriteString("SELECT COUNT(*) FROM messages WHERE " + column + " IN (")
			s.placeholders(&b, 1, n)
			b.WriteByte(')')
			var present int64
			if err := tx.QueryRowContext(ctx, b.String(), args[2:]...).Scan(&present); err != nil {
				return 0, 0, fmt.Errorf("count reported: %w", err)
			}
			missing += int64(n) - present
			keys = keys[n:]
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("commit reports: %w", err)
	}
	return changed, missing, nil
}

// reportSQL is the UPDATE of n reported messages found by column (pos or
// hash). The unary plus keeps the planner off the claim index (account_id,
// pos) WHERE status = 0, which would scan every pending message of the
// account: the primary key or the hash index finds the n rows.
func (s *Store) reportSQL(b *strings.Builder, column string, n int) string {
	b.Reset()
	b.WriteString("UPDATE messages SET status = " + s.param(1) +
		" WHERE +account_id = " + s.param(2) + " AND +status = 0 AND " + column + " IN (")
	s.placeholders(b, 3, n)
	b.WriteByte(')')
	return b.String()
}
