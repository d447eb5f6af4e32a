package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Report is a final status (StatusSent or StatusFailed) the status service
// applied to the account's message at FIFO position Pos, reported by Device
// (may be empty) at At.
type Report struct {
	AccountID int64
	Pos       int64
	Status    int
	Device    string
	At        time.Time
}

// reportChunk bounds the hashes of one UPDATE statement.
const reportChunk = 1000

// ApplyReports records each reported message of its account that is not
// final yet (new or initiated) as final: its status, the reporting device
// and when (the tracking read model, contract §9), in one transaction. A new
// message so reported is never handed out. Messages already final, unknown
// positions and other accounts' messages are left alone; reports with a
// status other than sent or failed are ignored. It is idempotent and returns
// the rows changed and how many reported positions have no row at all (not
// ingested yet).
func (s *Store) ApplyReports(ctx context.Context, reports []Report) (changed, missing int64, err error) {
	var positions []any
	for _, r := range reports {
		if r.Status == StatusSent || r.Status == StatusFailed {
			positions = append(positions, r.Pos)
		}
	}
	if len(positions) == 0 {
		return 0, 0, nil
	}
	tx, err := s.sqlDB().BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("begin reports: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit

	// One read by primary key finds the rows.
	rows := make(map[int64]reportedRow, len(positions))
	for rest := positions; len(rest) > 0; {
		n := min(len(rest), reportChunk)
		if err := s.readReported(ctx, tx, rest[:n], rows); err != nil {
			return 0, 0, err
		}
		rest = rest[n:]
	}

	// Reports of one event share account, status, device and time: one
	// statement per such group.
	type key struct {
		account int64
		status  int
		device  string
		at      time.Time
	}
	groups := make(map[key][]any)
	var order []key
	seen := make(map[int64]bool, len(positions))
	for _, r := range reports {
		if r.Status != StatusSent && r.Status != StatusFailed || seen[r.Pos] {
			continue
		}
		seen[r.Pos] = true
		stored, ok := rows[r.Pos]
		switch {
		case !ok:
			missing++
		case stored.account == r.AccountID && stored.status < StatusSent:
			k := key{r.AccountID, r.Status, r.Device, r.At.UTC()}
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], r.Pos)
		}
	}
	var b strings.Builder
	args := make([]any, 0, reportChunk+4)
	for _, k := range order {
		var device any
		if k.device != "" {
			device = k.device
		}
		for keys := groups[k]; len(keys) > 0; {
			n := min(len(keys), reportChunk)
			args = append(append(args[:0], k.status, device, s.timeParam(k.at), k.account), keys[:n]...)
			res, err := tx.ExecContext(ctx, s.reportSQL(&b, n), args...)
			if err != nil {
				return 0, 0, fmt.Errorf("apply reports: %w", err)
			}
			affected, err := res.RowsAffected()
			if err != nil {
				return 0, 0, fmt.Errorf("apply reports: %w", err)
			}
			changed += affected
			keys = keys[n:]
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("commit reports: %w", err)
	}
	return changed, missing, nil
}

// reportedRow is what a report needs to know of a stored message.
type reportedRow struct {
	account int64
	status  int
}

// readReported adds the stored rows among positions to into.
func (s *Store) readReported(ctx context.Context, tx *sql.Tx, positions []any, into map[int64]reportedRow) error {
	var b strings.Builder
	b.WriteString("SELECT pos, account_id, status FROM messages WHERE pos IN (")
	s.placeholders(&b, 1, len(positions))
	b.WriteByte(')')
	res, err := tx.QueryContext(ctx, b.String(), positions...)
	if err != nil {
		return fmt.Errorf("find reported: %w", err)
	}
	defer res.Close()
	for res.Next() {
		var pos int64
		var r reportedRow
		if err := res.Scan(&pos, &r.account, &r.status); err != nil {
			return fmt.Errorf("find reported: %w", err)
		}
		into[pos] = r
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("find reported: %w", err)
	}
	return nil
}

// reportSQL is the UPDATE of n reported positions; its parameters are
// (status, device, finished at, account, positions...). The unary plus keeps
// the planner off the claim index (account_id, pos) WHERE status = 0, which
// would scan every pending message of the account, and off the account
// index: the primary key finds the n rows.
func (s *Store) reportSQL(b *strings.Builder, n int) string {
	b.Reset()
	b.WriteString("UPDATE messages SET status = " + s.param(1) + ", device = " + s.param(2) + ", finished_at = " + s.param(3))
	if s.blankText {
		b.WriteString(", text = ''")
	}
	b.WriteString(" WHERE +account_id = " + s.param(4) + " AND +status < 2 AND pos IN (")
	s.placeholders(b, 5, n)
	b.WriteByte(')')
	return b.String()
}
