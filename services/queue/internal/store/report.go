package store

import (
	"context"
	"fmt"
	"strings"
)

// Report is a final status (StatusSent or StatusFailed) the status service
// applied to the account's message at FIFO position Pos.
type Report struct {
	AccountID int64
	Pos       int64
	Status    int
}

// reportChunk bounds the hashes of one UPDATE statement.
const reportChunk = 1000

// ApplyReports sets each reported message of its account that is still new
// to its final status, in one transaction, so it is never handed out.
// Initiated messages are left alone (they are never handed out again, and
// skipping them spares a random page write per report: the common case);
// so are messages already final, unknown positions and other accounts'
// messages; reports with a status other than sent or failed are ignored. It
// is idempotent and returns the rows changed and how many reported positions
// have no row at all (not ingested yet).
func (s *Store) ApplyReports(ctx context.Context, reports []Report) (changed, missing int64, err error) {
	type key struct {
		account int64
		status  int
	}
	groups := make(map[key][]any)
	var order []key
	for _, r := range reports {
		if r.Status != StatusSent && r.Status != StatusFailed {
			continue
		}
		k := key{r.AccountID, r.Status}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r.Pos)
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
		for keys := groups[k]; len(keys) > 0; {
			n := min(len(keys), reportChunk)
			args = append(append(args[:0], k.status, k.account), keys[:n]...)
			res, err := tx.ExecContext(ctx, s.reportSQL(&b, n), args...)
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
			b.WriteString("SELECT COUNT(*) FROM messages WHERE pos IN (")
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

// reportSQL is the UPDATE of n reported positions. The unary plus keeps the
// planner off the claim index (account_id, pos) WHERE status = 0, which
// would scan every pending message of the account: the primary key finds
// the n rows.
func (s *Store) reportSQL(b *strings.Builder, n int) string {
	b.Reset()
	b.WriteString("UPDATE messages SET status = " + s.param(1) +
		" WHERE +account_id = " + s.param(2) + " AND +status = 0 AND pos IN (")
	s.placeholders(b, 3, n)
	b.WriteByte(')')
	return b.String()
}
