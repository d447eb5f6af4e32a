package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apitosms/apitosms/libs/database"
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
	res, err := s.RecordReports(ctx, reports, nil)
	return res.Changed, res.Missing, err
}

// Recorded is what RecordReports did.
type Recorded struct {
	Changed int64 // messages that got an outcome now
	Missing int64 // reported positions with no row (not ingested yet)
	// Final holds, once per position, the messages of the accounts to be
	// told whose recorded outcome is the one a report of this call asked
	// for (same status and time):
	// those it recorded now, and those an earlier call with the same
	// reports recorded (a redelivered batch). They are what message.sent
	// and message.failed events tell, each as tracking shows it after the
	// commit; a later report repeating a final status (a phone's retry,
	// another time) is not among them.
	Final []Tracked
	// Sent and Failed count the outcomes recorded now, by status.
	Sent, Failed int64
	// Untold counts the outcomes recorded now of accounts not to be told
	// (not in Final).
	Untold int64
}

// RecordReports is ApplyReports that also returns the messages whose
// outcome the reports recorded (Recorded.Final), read in the same
// statement that finds the rows, so that the caller can publish their
// events before it acknowledges the reports: a report is acknowledged only
// once its outcome is stored and its event is published, and a redelivery
// of the same reports finds the same messages again.
//
// tell says which accounts' messages go in Final (nil: every account's).
// When it names none of the reports' accounts, as for accounts without a
// webhook, the rows are read without their tracking columns (phone, text,
// times): the drain's reports then read what they read before tracking.
func (s *Store) RecordReports(ctx context.Context, reports []Report, tell func(account int64) bool) (out Recorded, err error) {
	if !anyOutcome(reports) {
		return out, nil
	}
	stmts, err := s.reportStatements(ctx) // before the transaction (SQLite: one connection)
	if err != nil {
		return out, err
	}
	// On PostgreSQL a report's row locks can meet a sweep's in the other
	// order (a deadlock aborts one): the transaction simply runs again.
	err = database.RetryConflicts(ctx, func() error {
		out, err = s.recordReportsTx(ctx, stmts, reports, tell)
		return err
	})
	if err != nil {
		return Recorded{}, err
	}
	return out, nil
}

// recordReportsTx is RecordReports' transaction.
func (s *Store) recordReportsTx(ctx context.Context, stmts *reportStmts, reports []Report, tell func(account int64) bool) (Recorded, error) {
	tx, err := s.sqlDB().BeginTx(ctx, nil)
	if err != nil {
		return Recorded{}, fmt.Errorf("begin reports: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	var d backlogDelta
	out, err := s.recordReportsIn(ctx, tx, stmts, &d, reports, tell)
	if err != nil {
		return Recorded{}, err
	}
	countBacklog := s.countBacklog
	if stmts != nil {
		countBacklog = stmts.countBacklog
	}
	if err := countBacklog(ctx, tx, d); err != nil {
		return Recorded{}, err
	}
	if err := tx.Commit(); err != nil {
		return Recorded{}, fmt.Errorf("commit reports: %w", err)
	}
	return out, nil
}

// anyOutcome reports whether a report of reports is final (sent or failed):
// the others record nothing.
func anyOutcome(reports []Report) bool {
	for _, r := range reports {
		if r.Status == StatusSent || r.Status == StatusFailed {
			return true
		}
	}
	return false
}

// recordReportsIn is RecordReports in tx (stmts: reportStatements), adding
// what it changes in the backlog counts to d; the caller writes d and
// commits, and drops out if that fails. Re-runnable: it reads what it finds
// in tx.
func (s *Store) recordReportsIn(ctx context.Context, tx *sql.Tx, stmts *reportStmts, d *backlogDelta, reports []Report, tell func(account int64) bool) (out Recorded, err error) {
	var changed, missing int64
	positions := make([]any, 0, len(reports)) // sized once: every append of a batch's rows grew it
	// tells is tell asked once per run of one account's reports.
	lastAccount, lastTold := int64(0), false
	tells := func(account int64) bool {
		if tell == nil {
			return true
		}
		if account != lastAccount || lastAccount == 0 {
			lastAccount, lastTold = account, tell(account)
		}
		return lastTold
	}
	wide := false
	for _, r := range reports {
		if r.Status == StatusSent || r.Status == StatusFailed {
			positions = append(positions, r.Pos)
			wide = wide || tells(r.AccountID)
		}
	}
	if len(positions) == 0 {
		return out, nil
	}
	// With handOuts (SQLite) every row is read narrow, the told ones'
	// tracking columns taken from their claims where it can be.
	memo := wide && stmts != nil && s.handOuts != nil
	// One read by primary key finds the rows.
	rows := make(map[int64]*reportedRow, len(positions))
	for rest := positions; len(rest) > 0; {
		n := min(len(rest), reportChunk)
		if stmts != nil {
			n = len(rest) // one JSON argument
		}
		if err := s.readReported(ctx, tx, stmts, rest[:n], rows, wide && !memo); err != nil {
			return out, err
		}
		rest = rest[n:]
	}
	if memo {
		if err := s.trackHandOuts(ctx, tx, stmts, reports, rows, tells); err != nil {
			return out, err
		}
	}
	if len(rows) < len(positions) {
		// Some not in messages: scheduled ones (rare) move there first.
		if err := s.takeReportedScheduled(ctx, tx, d, reports, rows); err != nil {
			return out, err
		}
	}
	if !s.pg {
		// Initiated rows of claims not confirmed yet are few (a report
		// usually comes long after its claim's ack): look their claims up.
		// (PostgreSQL's readReported reads whether they are open with the
		// rows, in one snapshot.)
		if err := markOpen(ctx, tx, stmts, rows); err != nil {
			return out, err
		}
	}

	ended := make([]Report, 0, len(rows)) // in report order, one per position
	type key struct {
		account int64
		status  int
	}
	type found struct {
		r      Report
		stored reportedRow
		told   bool
	}
	mine := make([]found, 0, len(rows)) // the reports naming a stored message of their account, in report order
	pending := make(map[key][]any)      // still new, or under an open claim: set final
	isPending := make(map[int64]bool)
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
		case stored.account != r.AccountID:
		default:
			mine = append(mine, found{r, *stored, wide && tells(r.AccountID)})
			if stored.status >= StatusSent {
				continue
			}
			ended = append(ended, r)
			if s.blankText {
				blank = append(blank, r.Pos)
			}
			if stored.status <= StatusNew || stored.status == StatusInitiated && stored.open {
				isPending[r.Pos] = true
				k := key{r.AccountID, r.Status}
				if _, ok := pending[k]; !ok {
					order = append(order, k)
				}
				pending[k] = append(pending[k], r.Pos)
			}
		}
	}
	// The outcomes rows inserted now are the outcomes recorded now (a
	// message's first report wins; a repeat conflicts and is not returned).
	var b strings.Builder
	recorded := make(map[int64]bool, len(ended))
	if stmts != nil && len(ended) > 0 {
		if err := stmts.insertOutcomes(ctx, tx, ended, recorded); err != nil {
			return out, err
		}
	}
	for rest := ended; stmts == nil && len(rest) > 0; {
		n := min(len(rest), reportChunk)
		if err := s.insertOutcomes(ctx, tx, &b, rest[:n], recorded); err != nil {
			return out, err
		}
		rest = rest[n:]
	}
	changed = int64(len(recorded))
	if memo {
		// A hand-out stands for a row only until its first outcome: the
		// rows whose report recorded nothing now (a redelivery, a repeat)
		// are read in full, after the insert, which left their outcome
		// rows as they were.
		var again []any
		for _, f := range mine {
			if f.told && f.stored.handedOut && !recorded[f.r.Pos] {
				again = append(again, f.r.Pos)
			}
		}
		if len(again) > 0 {
			if err := s.readFull(ctx, tx, stmts, again, rows); err != nil {
				return out, err
			}
			for i := range mine {
				if f := &mine[i]; f.told && f.stored.handedOut && !recorded[f.r.Pos] {
					f.stored = *rows[f.r.Pos]
				}
			}
		}
	}
	var phones []phoneCount // few: one per phone and day
	var day phoneDay
	if wide {
		out.Final = make([]Tracked, 0, len(mine))
	}
	for _, f := range mine {
		r, stored := f.r, f.stored
		switch {
		case recorded[r.Pos]:
			if f.told {
				out.Final = append(out.Final, stored.final(r, s.blankText)) // recorded now
			} else {
				out.Untold++
			}
			sent := r.Status == StatusSent
			if sent {
				out.Sent++
			} else {
				out.Failed++
			}
			if r.Device != "" {
				countPhone(&phones, &day, r, sent)
			}
		case f.told && stored.outcome == r.Status && sameTime(stored.tracked.FinishedAt, r.At):
			// Recorded before by these very reports: a redelivery.
			out.Final = append(out.Final, stored.final(r, s.blankText))
		}
	}
	// before holds the status each row set final had before (its backlog
	// count): on SQLite the one read above (one writer); on PostgreSQL the
	// UPDATE's own, read under the row lock (a sweep may have requeued the
	// row since, or a claim handed it out).
	before := make(map[int64]int, len(isPending))
	args := make([]any, 0, reportChunk+2)
	for _, k := range order {
		for keys := pending[k]; len(keys) > 0; {
			n := min(len(keys), reportChunk)
			if stmts != nil {
				n = len(keys) // one JSON argument
			}
			args = append(append(args[:0], k.status, k.account), keys[:n]...)
			if err := s.setFinal(ctx, tx, stmts, &b, n, args, rows, before); err != nil {
				return out, fmt.Errorf("apply reports: %w", err)
			}
			keys = keys[n:]
		}
	}
	for _, r := range ended {
		old, set := before[r.Pos]
		switch {
		case set && old == StatusNew:
			d.add(-1, 0)
		case set && old == StatusInitiated && recorded[r.Pos]:
			d.add(0, -1)
		case !set && !isPending[r.Pos] && recorded[r.Pos]:
			// Initiated under a closed claim (or none): it stays so, with an
			// outcome from now on.
			d.add(0, -1)
		}
	}
	if stmts != nil && len(blank) > 0 {
		if _, err := tx.StmtContext(ctx, stmts.blank).ExecContext(ctx, jsonPositions(blank)); err != nil {
			return out, fmt.Errorf("blank texts: %w", err)
		}
	}
	for rest := blank; stmts == nil && len(rest) > 0; {
		n := min(len(rest), reportChunk)
		b.Reset()
		b.WriteString("UPDATE messages SET text = '' WHERE pos IN (")
		s.placeholders(&b, 1, n)
		b.WriteByte(')')
		if _, err := tx.ExecContext(ctx, b.String(), rest[:n]...); err != nil {
			return out, fmt.Errorf("blank texts: %w", err)
		}
		rest = rest[n:]
	}
	if err := s.countPhones(ctx, tx, stmts, phones); err != nil {
		return out, err
	}
	out.Changed, out.Missing = changed, missing
	return out, nil
}

// phoneDay remembers the day of the last report time countPhone saw (a
// batch's reports mostly share one time).
type phoneDay struct {
	at  time.Time
	day string
}

// countPhone adds r's outcome to its phone's count for r's day.
func countPhone(counts *[]phoneCount, last *phoneDay, r Report, sent bool) {
	if last.day == "" || !r.At.Equal(last.at) {
		last.at, last.day = r.At, r.At.UTC().Format(time.DateOnly)
	}
	day := last.day
	var c *phoneCount
	for i := range *counts {
		if p := &(*counts)[i]; p.account == r.AccountID && p.device == r.Device && p.day == day {
			c = p
			break
		}
	}
	if c == nil {
		*counts = append(*counts, phoneCount{account: r.AccountID, device: r.Device, day: day})
		c = &(*counts)[len(*counts)-1]
	}
	if sent {
		c.sent++
	} else {
		c.failed++
	}
	c.atMs = max(c.atMs, r.At.UnixMilli())
}

// insertOutcomes appends the outcomes of reports (at most reportChunk) and
// adds the positions of those that were new to into.
func (s *Store) insertOutcomes(ctx context.Context, tx *sql.Tx, b *strings.Builder, reports []Report, into map[int64]bool) error {
	query, args := insertOutcomesPostgres, []any(nil)
	if s.pg {
		args = outcomesArrays(reports)
	} else {
		query, args = s.outcomesValues(b, reports)
	}
	res, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	defer res.Close()
	for res.Next() {
		var pos int64
		if err := res.Scan(&pos); err != nil {
			return fmt.Errorf("record outcomes: %w", err)
		}
		into[pos] = true
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	return nil
}

// outcomesValues is the multi-row INSERT of insertOutcomes (SQLite) and its
// arguments.
func (s *Store) outcomesValues(b *strings.Builder, reports []Report) (string, []any) {
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
	b.WriteString(" ON CONFLICT DO NOTHING RETURNING pos")
	return b.String(), args
}

// reportedRow is what a report needs to know of a stored message.
type reportedRow struct {
	account int64
	status  int   // in messages
	claim   int64 // 0: none
	open    bool  // initiated under a claim still open
	outcome int   // the recorded outcome's status, 0: none yet
	tracked Tracked
	// full: tracked and outcome were read from the database; handedOut:
	// tracked is a hand-out's (handOuts), good only if no outcome is
	// stored yet.
	full, handedOut bool
}

// final is the message as tracking shows it once r's outcome is recorded.
func (row reportedRow) final(r Report, blankText bool) Tracked {
	t := row.tracked
	if row.outcome == 0 {
		at := r.At
		t.FinishedAt, t.Device = &at, r.Device
	}
	t.Status = r.Status
	if blankText {
		t.Text = ""
	}
	return t
}

// sameTime reports whether a stored outcome time is at (both databases keep
// at least microseconds; compared to the millisecond).
func sameTime(stored *time.Time, at time.Time) bool {
	return stored != nil && stored.Truncate(time.Millisecond).Equal(at.Truncate(time.Millisecond))
}

// readReported adds the stored rows among positions to into, with their
// tracking columns (reportedRow.tracked) and recorded outcome when wide.
// Without them a row costs one primary-key read of messages and four
// integers (docs/benchmarks.md, 2026-12-02): RecordReports learns which
// outcomes are new from their insert, and only the events of told
// accounts need the stored outcome (a redelivery's).
//
// The rows are kept in one slice (a map's values of more than 128 bytes
// are allocated one by one).
func (s *Store) readReported(ctx context.Context, tx *sql.Tx, stmts *reportStmts, positions []any, into map[int64]*reportedRow, wide bool) error {
	var res *sql.Rows
	var err error
	switch {
	case stmts != nil && wide:
		res, err = tx.StmtContext(ctx, stmts.wide).QueryContext(ctx, jsonPositions(positions))
	case stmts != nil:
		res, err = tx.StmtContext(ctx, stmts.narrow).QueryContext(ctx, jsonPositions(positions))
	default:
		query, args := s.readReportedSQL(wide, positions)
		res, err = tx.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return fmt.Errorf("find reported: %w", err)
	}
	defer res.Close()
	slab := make([]reportedRow, 0, len(positions))
	var packed string // SQLite's packed columns, each row's in turn
	var cols [3]any
	for res.Next() {
		slab = append(slab, reportedRow{}) // a pointer taken before a growth still points at its own row
		r := &slab[len(slab)-1]
		if !wide {
			if stmts != nil {
				err = scanNarrowReported(res, r, &cols)
			} else {
				err = res.Scan(&r.tracked.Pos, &r.account, &r.status, &r.claim, &r.open)
			}
			if err != nil {
				return fmt.Errorf("find reported: %w", err)
			}
			into[r.tracked.Pos] = r
			continue
		}
		if stmts != nil {
			if err := scanWideReported(res, r, &packed); err != nil {
				return fmt.Errorf("find reported: %w", err)
			}
			r.full = true
			into[r.tracked.Pos] = r
			continue
		}
		t := &r.tracked
		var accepted, claimed, finished any
		var lane int
		if err := res.Scan(&t.Pos, &t.AccountID, &t.Phone, &t.Text, &t.Status, &accepted, &claimed, &finished, &t.Device, &t.Attempts,
			&t.SendAt, &t.ValidUntil, &lane, &r.status, &r.claim, &r.outcome, &r.open); err != nil {
			return fmt.Errorf("find reported: %w", err)
		}
		t.High = lane == 0
		if t.AcceptedAt, err = asTime(accepted); err != nil {
			return fmt.Errorf("find reported: %w", err)
		}
		if t.ClaimedAt, err = asTimePtr(claimed); err != nil {
			return fmt.Errorf("find reported: %w", err)
		}
		if t.FinishedAt, err = asTimePtr(finished); err != nil {
			return fmt.Errorf("find reported: %w", err)
		}
		r.account, r.full = t.AccountID, true
		into[t.Pos] = r
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("find reported: %w", err)
	}
	return nil
}

// trackHandOuts fills in the tracking columns of the told accounts' rows
// read narrow (rows) from their hand-outs (handOuts), and reads the others
// in full: rows of another account, rows final already or with no claim,
// hand-outs forgotten or of another claim.
func (s *Store) trackHandOuts(ctx context.Context, tx *sql.Tx, stmts *reportStmts, reports []Report, rows map[int64]*reportedRow, tells func(int64) bool) error {
	var misses []any
	for _, r := range reports {
		if r.Status != StatusSent && r.Status != StatusFailed || !tells(r.AccountID) {
			continue
		}
		row, ok := rows[r.Pos]
		if !ok || row.account != r.AccountID || row.full || row.handedOut {
			continue
		}
		// Taken (forgotten) whether or not it serves: a row is reported once.
		if e, ok := s.handOuts.take(r.Pos, r.AccountID, row.claim); ok && row.status < StatusSent {
			t, err := e.tracked(r.Pos)
			if err != nil {
				return fmt.Errorf("find reported: %w", err)
			}
			row.tracked, row.handedOut = t, true
			continue
		}
		row.full = true // once in misses
		misses = append(misses, r.Pos)
	}
	if len(misses) == 0 {
		return nil
	}
	return s.readFull(ctx, tx, stmts, misses, rows)
}

// readFull reads positions (rows of rows) in full and sets their tracking
// columns and recorded outcome, keeping what the narrow read found (the
// same rows in the same transaction) and markOpen's word.
func (s *Store) readFull(ctx context.Context, tx *sql.Tx, stmts *reportStmts, positions []any, rows map[int64]*reportedRow) error {
	full := make(map[int64]*reportedRow, len(positions))
	if err := s.readReported(ctx, tx, stmts, positions, full, true); err != nil {
		return err
	}
	for pos, w := range full {
		if row, ok := rows[pos]; ok {
			row.tracked, row.outcome, row.full, row.handedOut = w.tracked, w.outcome, true, false
		}
	}
	return nil
}

// readReportedSQL reads n positions on PostgreSQL, and on SQLite where no
// statement is prepared (the rare scheduled rows a report moves; otherwise
// narrowReportedSQLite, the same columns, and wideReportedSQLite, the same
// values packed).
// Whether the claim is open is read in the statement's snapshot: a row
// initiated under a claim closed in it was acknowledged (a sweep would have
// changed the row) and stays initiated, so a report that does not rewrite
// it cannot miss a requeue (the row set final instead, or counted twice in
// the backlog counts).
func (s *Store) readReportedSQL(wide bool, positions []any) (string, []any) {
	var b strings.Builder
	const open = ", (m.status = 1 AND EXISTS (SELECT 1 FROM claims c WHERE c.id = m.claim_id))"
	if wide {
		b.WriteString("SELECT " + trackColumns + ", m.status, COALESCE(m.claim_id, 0), COALESCE(o.status, 0)" + open + trackFrom + " WHERE m.pos")
	} else {
		b.WriteString("SELECT m.pos, m.account_id, m.status, COALESCE(m.claim_id, 0)" + open + " FROM messages m WHERE m.pos")
	}
	args := s.positionsIn(&b, positions)
	return b.String(), args
}

// markOpen sets open on the rows initiated under a claim still open, read
// in tx (SQLite: the same snapshot as the rows, one writer).
func markOpen(ctx context.Context, tx *sql.Tx, stmts *reportStmts, rows map[int64]*reportedRow) error {
	var claimIDs []int64
	for _, row := range rows {
		if row.status == StatusInitiated && row.claim != 0 {
			claimIDs = append(claimIDs, row.claim)
		}
	}
	if len(claimIDs) == 0 {
		return nil
	}
	slices.Sort(claimIDs)
	open, err := stmts.openClaimsOf(ctx, tx, slices.Compact(claimIDs))
	if err != nil {
		return err
	}
	for _, row := range rows {
		if row.status == StatusInitiated && open[row.claim] {
			row.open = true
		}
	}
	return nil
}

// setFinal runs reportSQL (SQLite: finalSQLite) on n positions (args:
// status, account, positions) and records in before the status each row it set final had.
func (s *Store) setFinal(ctx context.Context, tx *sql.Tx, stmts *reportStmts, b *strings.Builder, n int, args []any, rows map[int64]*reportedRow, before map[int64]int) error {
	if !s.pg {
		if _, err := tx.StmtContext(ctx, stmts.final).ExecContext(ctx, args[0], args[1], jsonPositions(args[2:])); err != nil {
			return err
		}
		for _, p := range args[2:] {
			before[p.(int64)] = rows[p.(int64)].status
		}
		return nil
	}
	res, err := tx.QueryContext(ctx, s.reportSQL(b, n), args...)
	if err != nil {
		return err
	}
	defer res.Close()
	for res.Next() {
		var pos int64
		var old int
		if err := res.Scan(&pos, &old); err != nil {
			return err
		}
		before[pos] = old
	}
	return res.Err()
}

// reportSQL is the UPDATE setting n reported messages final (new, or
// initiated under an open claim; a row a claim or sweep changed meanwhile is
// still set, as long as it is not final); its parameters are (status,
// account, positions...), on PostgreSQL (SQLite's is finalSQLite). The unary plus keeps the
// planner off the claim index (account_id, pos) WHERE status = 0, which
// would scan every pending message of the account, and off the account
// index: the primary key finds the n rows.
//
// It locks the rows first and returns each one's position and status
// before (the backlog counts'), read under the lock.
func (s *Store) reportSQL(b *strings.Builder, n int) string {
	b.Reset()
	b.WriteString("WITH t AS (SELECT pos, status FROM messages WHERE +account_id = $2 AND +status < 2 AND pos IN (")
	s.placeholders(b, 3, n)
	b.WriteString(") FOR UPDATE) UPDATE messages m SET status = $1 FROM t WHERE m.pos = t.pos RETURNING m.pos, t.status")
	return b.String()
}
