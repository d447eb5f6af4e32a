package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
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

// ApplyReports records how each reported message of its account that is
// not final yet (new or initiated) ended, in one transaction: an outcomes row
// (status, device, time: the tracking read model, contract §9) and, for a
// message still new, its final status so it is never handed out. Messages
// already final, unknown positions and other accounts' messages are left
// alone; reports with a status other than sent or failed are ignored. It is
// idempotent (the first outcome stays) and returns the messages that got an
// outcome and how many reported positions have no row at all (not ingested
// yet).
//
// The message rows themselves are written only for messages still new (the
// rare case), for messages initiated under a claim not confirmed yet (so the
// claim's sweep does not hand them out again), or when texts are blanked
// (SetKeepText(false)): a report of a message handed out under a confirmed
// claim appends a narrow outcomes row instead of rewriting the message's.
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

	var ended []Report // in report order, one per position
	type key struct {
		account int64
		status  int
	}
	pending := make(map[key][]any) // still new, or under an open claim: set final
	var order []key
	var blank []any
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
			ended = append(ended, r)
			if s.blankText {
				blank = append(blank, r.Pos)
			}
			if stored.status <= StatusNew || stored.status == StatusInitiated && stored.claim != 0 && open[stored.claim] {
				k := key{r.AccountID, r.Status}
				if _, ok := pending[k]; !ok {
					order = append(order, k)
				}
				pending[k] = append(pending[k], r.Pos)
			}
		}
	}
	var b strings.Builder
	for rest := ended; len(rest) > 0; {
		n := min(len(rest), reportChunk)
		added, err := s.insertOutcomes(ctx, tx, &b, rest[:n])
		if err != nil {
			return 0, 0, err
		}
		changed += added
		rest = rest[n:]
	}
	args := make([]any, 0, reportChunk+2)
	for _, k := range order {
		for keys := pending[k]; len(keys) > 0; {
			n := min(len(keys), reportChunk)
			args = append(append(args[:0], k.status, k.account), keys[:n]...)
			if _, err := tx.ExecContext(ctx, s.reportSQL(&b, n), args...); err != nil {
				return 0, 0, fmt.Errorf("apply reports: %w", err)
			}
			keys = keys[n:]
		}
	}
	for rest := blank; len(rest) > 0; {
		n := min(len(rest), reportChunk)
		b.Reset()
		b.WriteString("UPDATE messages SET text = '' WHERE pos IN (")
		s.placeholders(&b, 1, n)
		b.WriteByte(')')
		if _, err := tx.ExecContext(ctx, b.String(), rest[:n]...); err != nil {
			return 0, 0, fmt.Errorf("blank texts: %w", err)
		}
		rest = rest[n:]
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("commit reports: %w", err)
	}
	return changed, missing, nil
}

// insertOutcomes appends the outcomes of reports (at most reportChunk) and
// returns how many were new.
func (s *Store) insertOutcomes(ctx context.Context, tx *sql.Tx, b *strings.Builder, reports []Report) (int64, error) {
	b.Reset()
	b.WriteString("INSERT INTO outcomes (pos, status, device, finished_at) VALUES ")
	args := make([]any, 0, 4*len(reports))
	var lastAt time.Time
	var lastArg any
	for i, r := range reports {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		s.placeholders(b, 4*i+1, 4)
		b.WriteByte(')')
		var device any
		if r.Device != "" {
			device = r.Device
		}
		if lastArg == nil || !r.At.Equal(lastAt) {
			lastAt, lastArg = r.At, s.timeParam(r.At)
		}
		args = append(args, r.Pos, r.Status, device, lastArg)
	}
	b.WriteString(" ON CONFLICT DO NOTHING")
	res, err := tx.ExecContext(ctx, b.String(), args...)
	if err != nil {
		return 0, fmt.Errorf("record outcomes: %w", err)
	}
	return res.RowsAffected()
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

// reportSQL is the UPDATE setting n reported messages final (new, or
// initiated under an open claim; a row a claim or sweep changed meanwhile is
// still set, as long as it is not final); its parameters are (status,
// account, positions...). The unary plus keeps the
// planner off the claim index (account_id, pos) WHERE status = 0, which
// would scan every pending message of the account, and off the account
// index: the primary key finds the n rows.
func (s *Store) reportSQL(b *strings.Builder, n int) string {
	b.Reset()
	b.WriteString("UPDATE messages SET status = " + s.param(1) +
		" WHERE +account_id = " + s.param(2) + " AND +status < 2 AND pos IN (")
	s.placeholders(b, 3, n)
	b.WriteByte(')')
	return b.String()
}
