package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
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
// Initiated messages whose claim is confirmed are left alone (they are
// never handed out again, and skipping them spares a random page write per
// report: the common case); an initiated message whose claim is still open
// is set final too, so the claim's sweep does not hand it out again. So are
// left alone messages already final, unknown positions and other accounts'
// messages; reports with a status other than sent or failed are ignored. It
// is idempotent and returns the rows changed and how many reported positions
// have no row at all (not ingested yet).
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

	// One read by primary key finds the rows; usually every one is already
	// initiated, and nothing is written at all.
	rows := make(map[int64]reportedRow, len(positions))
	for rest := positions; len(rest) > 0; {
		n := min(len(rest), reportChunk)
		if err := s.readReported(ctx, tx, rest[:n], rows); err != nil {
			return 0, 0, err
		}
		rest = rest[n:]
	}

	// Initiated rows of claims not confirmed yet are few (a report usually
	// comes long after its claim's ack): look their claims up.
	var claimIDs []int64
	for _, row := range rows {
		if row.status == StatusInitiated && row.claim != 0 {
			claimIDs = append(claimIDs, row.claim)
		}
	}
	var open map[int64]bool
	if len(claimIDs) > 0 {
		slices.Sort(claimIDs)
		if open, err = s.openClaims(ctx, tx, slices.Compact(claimIDs)); err != nil {
			return 0, 0, err
		}
	}

	type key struct {
		account int64
		status  int
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
		case stored.account == r.AccountID && (stored.status == StatusNew ||
			stored.status == StatusInitiated && stored.claim != 0 && open[stored.claim]):
			k := key{r.AccountID, r.Status}
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], r.Pos)
		}
	}
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
	claim   int64 // 0: none
}

// readReported adds the stored rows among positions to into.
func (s *Store) readReported(ctx context.Context, tx *sql.Tx, positions []any, into map[int64]reportedRow) error {
	var b strings.Builder
	b.WriteString("SELECT pos, account_id, status, COALESCE(claim_id, 0) FROM messages WHERE pos IN (")
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
		if err := res.Scan(&pos, &r.account, &r.status, &r.claim); err != nil {
			return fmt.Errorf("find reported: %w", err)
		}
		into[pos] = r
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("find reported: %w", err)
	}
	return nil
}

// reportSQL is the UPDATE of n reported positions (new, or initiated under
// an open claim; a row a claim or sweep changed meanwhile is still set, as
// long as it is not final). The unary plus keeps the
// planner off the claim index (account_id, pos) WHERE status = 0, which
// would scan every pending message of the account: the primary key finds
// the n rows.
func (s *Store) reportSQL(b *strings.Builder, n int) string {
	b.Reset()
	b.WriteString("UPDATE messages SET status = " + s.param(1) +
		" WHERE +account_id = " + s.param(2) + " AND +status < 2 AND pos IN (")
	s.placeholders(b, 3, n)
	b.WriteByte(')')
	return b.String()
}
