package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The report path's statements on SQLite, prepared once on the writer's
// connection. Built per call, their text changed with every batch's size
// (an IN list, a multi-row VALUES), so SQLite parsed them anew each time:
// the outcomes insert's parse was a third of its cost, and the per-report
// statements of the phone fleet (20 reports a batch) parsed more than they
// ran. Here a variable-size list of positions is one JSON array argument
// (json_each), so the text never changes; PostgreSQL keeps its own
// statements (and row locks) in report.go.
const (
	// Positions IN a subquery of json_each: SQLite walks the list and
	// seeks each position by the primary key (TestReportsUsePrimaryKeySQLite).
	inPositions = ` IN (SELECT value FROM json_each(?))`

	// readReportedSQL's narrow read in three integer columns: the driver
	// takes two locked calls a column (why: wideReportedSQLite), so the
	// account and the status share one, account << 3 | status + 1, exact
	// for accounts below 2^60 (all of them: they are counted up from 1) and
	// statuses -1..6; any other pair comes as the text "account status"
	// (scanNarrowReported reads both). printf for all four integers cost
	// more than the columns it saved (docs/benchmarks.md, session 7, h3).
	// Whether the claim is open is markOpen's.
	narrowReportedSQLite = `SELECT m.pos, CASE WHEN m.account_id BETWEEN 0 AND 1152921504606846975 AND m.status BETWEEN -1 AND 6
		THEN (m.account_id << 3) | (m.status + 1) ELSE printf('%d %d', m.account_id, m.status) END,
		COALESCE(m.claim_id, 0) FROM messages m WHERE m.pos` + inPositions
	// One statement per (status, device, time): a reported batch shares its
	// device and time. WHERE true tells SQLite's parser the ON CONFLICT is
	// the upsert's, not a join's.
	outcomesSQLite = `INSERT INTO outcomes (pos, status, device, finished_at) SELECT value, ?, ?, ? FROM json_each(?) WHERE true
		ON CONFLICT DO NOTHING RETURNING pos`
	// setFinal's UPDATE (see reportSQL for the unary plus).
	finalSQLite = `UPDATE messages SET status = ? WHERE +account_id = ? AND +status < 2 AND pos` + inPositions
	blankSQLite = `UPDATE messages SET text = '' WHERE pos` + inPositions
	// markOpen's: which of the rows' claims are still open.
	openClaimsSQLite = `SELECT id FROM claims WHERE id IN (SELECT value FROM json_each(?))`
)

// wideReportedSQLite reads the tracking columns with the row (reportedRow)
// in four result columns: the phone, the text, the device, and the rest
// packed by printf into one text, read by scanWideReported. The driver
// takes two locked calls a column (its type, then its value); with 17
// columns those were most of the wide read's cost, and the wide read is
// the extra a drain pays for message events (docs/benchmarks.md, session
// 6, h2). The texts a client or a phone chose stay columns of their own
// (printf's %s would stop at a NUL byte); the times are the text SQLite
// holds (the driver would parse each DATETIME column with two time.Parse
// calls), a NULL printed as nothing. What trackColumns computes (the
// status as tracking shows it, the attempts of a message handed out before
// they were counted) is computed in Go from the same values.
var wideReportedSQLite = `SELECT m.phone, m.text, COALESCE(o.device, ''), printf('%d %d %d %d %d %d %d %d %d|%s|%s|%s',
	m.pos, m.account_id, m.status, COALESCE(m.claim_id, 0), COALESCE(o.status, 0), m.attempts,
	COALESCE(m.send_at, 0), COALESCE(m.valid_until, 0), m.lane, m.accepted_at, m.claimed_at, o.finished_at)` +
	trackFrom + ` WHERE m.pos` + inPositions

// scanWideReported reads a row of wideReportedSQLite into r, as
// readReported reads trackColumns and the report's columns on PostgreSQL;
// packed is the caller's, for its packed column (one for all rows: a
// variable of its own given to Scan would be allocated for each).
func scanWideReported(res *sql.Rows, r *reportedRow, packed *string) error {
	t := &r.tracked
	if err := res.Scan(&t.Phone, &t.Text, &t.Device, packed); err != nil {
		return err
	}
	var n [9]int64
	rest, err := cutInts(*packed, n[:], '|')
	if err != nil {
		return err
	}
	accepted, rest, ok := strings.Cut(rest, "|")
	claimed, finished, ok2 := strings.Cut(rest, "|")
	if !ok || !ok2 {
		return fmt.Errorf("packed row %q: not three times", *packed)
	}
	t.Pos, t.AccountID, r.status, r.claim, r.outcome = n[0], n[1], int(n[2]), n[3], int(n[4])
	t.Attempts, t.SendAt, t.ValidUntil, t.High = int(n[5]), n[6], n[7], n[8] == 0
	r.account = t.AccountID
	// trackStatus and trackColumns' attempts.
	t.Status = max(r.status, 0)
	if r.outcome != 0 {
		t.Status = r.outcome
	}
	if t.Attempts == 0 && claimed != "" {
		t.Attempts = 1
	}
	if t.AcceptedAt, err = parseReportText(accepted); err != nil {
		return err
	}
	if t.ClaimedAt, err = parseReportTextPtr(claimed); err != nil {
		return err
	}
	t.FinishedAt, err = parseReportTextPtr(finished)
	return err
}

// scanNarrowReported reads a row of narrowReportedSQLite into r, as
// readReported reads readReportedSQL's narrow columns (r.open stays false).
// cols is the caller's, one for all rows (variables of its own given to
// Scan would be allocated for each row); Scan stores the driver's values
// in them as they are (no conversion by reflection).
func scanNarrowReported(res *sql.Rows, r *reportedRow, cols *[3]any) error {
	if err := res.Scan(&cols[0], &cols[1], &cols[2]); err != nil {
		return err
	}
	pos, ok := cols[0].(int64)
	claim, ok2 := cols[2].(int64)
	if !ok || !ok2 {
		return fmt.Errorf("reported row: position %T, claim %T", cols[0], cols[2])
	}
	switch v := cols[1].(type) {
	case int64:
		r.account, r.status = v>>3, int(v&7)-1
	case string:
		var n [2]int64
		if _, err := cutInts(v, n[:], 0); err != nil {
			return err
		}
		r.account, r.status = n[0], int(n[1])
	default:
		return fmt.Errorf("reported row %d: account and status %T", pos, v)
	}
	r.tracked.Pos, r.claim = pos, claim
	return nil
}

// cutInts parses the len(n) decimal integers packed starts with, separated
// by single spaces, the last one followed by end (0: by the end of packed),
// into n, and returns what follows end.
func cutInts(packed string, n []int64, end byte) (string, error) {
	rest := packed
	for i := range n {
		sep := byte(' ')
		if i == len(n)-1 {
			sep = end
		}
		j := len(rest)
		if sep != 0 {
			if j = strings.IndexByte(rest, sep); j < 0 {
				return "", fmt.Errorf("packed row %q: %d integers, want %d", packed, i, len(n))
			}
		}
		v, err := strconv.ParseInt(rest[:j], 10, 64)
		if err != nil {
			return "", fmt.Errorf("packed row %q: %w", packed, err)
		}
		n[i], rest = v, rest[min(j+1, len(rest)):]
	}
	return rest, nil
}

// parseReportText is parseReportTime of a text.
func parseReportText(s string) (time.Time, error) {
	if t, ok := fastUTC(s); ok {
		return t, nil
	}
	return parseReportTime(s)
}

// parseReportTextPtr is parseReportText of a packed nullable time ("": NULL).
func parseReportTextPtr(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := parseReportText(s)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// reportStmts are the prepared statements of the report path (SQLite).
type reportStmts struct {
	mu                                          sync.Mutex
	narrow, wide, outcomes, final, blank, phone *sql.Stmt
	openClaims, backlog                         *sql.Stmt
}

// reportStatements prepares the report path's statements on first use and
// returns them; nil on PostgreSQL. It must run outside a transaction: the
// SQLite writer pool has one connection, which a transaction holds.
func (s *Store) reportStatements(ctx context.Context) (*reportStmts, error) {
	if s.pg {
		return nil, nil
	}
	p := &s.reports
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, st := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&p.narrow, narrowReportedSQLite}, {&p.wide, wideReportedSQLite}, {&p.outcomes, outcomesSQLite},
		{&p.final, finalSQLite}, {&p.blank, blankSQLite}, {&p.phone, s.countPhonesSQL()},
		{&p.openClaims, openClaimsSQLite}, {&p.backlog, countBacklogSQLite},
	} {
		if *st.dst != nil {
			continue
		}
		prepared, err := s.sqlDB().PrepareContext(ctx, st.query)
		if err != nil {
			return nil, fmt.Errorf("prepare report statement: %w", err)
		}
		*st.dst = prepared
	}
	return p, nil
}

// jsonPositions is positions (int64s, or anys holding them) as a JSON
// array, for json_each.
func jsonPositions[T any](positions []T) string {
	b := make([]byte, 0, 2+len(positions)*12)
	b = append(b, '[')
	for i, p := range positions {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, any(p).(int64), 10)
	}
	return string(append(b, ']'))
}

// openClaimsOf is openClaims (claims.go) on SQLite: which of ids are open
// claims, read in tx.
func (p *reportStmts) openClaimsOf(ctx context.Context, tx *sql.Tx, ids []int64) (map[int64]bool, error) {
	got, err := scanPositions(tx.StmtContext(ctx, p.openClaims).QueryContext(ctx, jsonPositions(ids)))
	if err != nil {
		return nil, fmt.Errorf("find open claims: %w", err)
	}
	open := make(map[int64]bool, len(got))
	for _, id := range got {
		open[id] = true
	}
	return open, nil
}

// countBacklog is Store.countBacklog (gauges.go) on SQLite.
func (p *reportStmts) countBacklog(ctx context.Context, tx *sql.Tx, d backlogDelta) error {
	if d == (backlogDelta{}) {
		return nil
	}
	if _, err := tx.StmtContext(ctx, p.backlog).ExecContext(ctx, 0, d.waiting, d.initiated); err != nil {
		return fmt.Errorf("count backlog: %w", err)
	}
	return nil
}

// outcomeGroup is the reports of one statement of outcomesSQLite.
type outcomeGroup struct {
	status    int
	device    string
	at        time.Time
	positions []int64
}

// insertOutcomesSQLite is insertOutcomes on SQLite: one prepared statement
// per status, device and time among reports (a reported batch has one
// device and time), any number of reports.
func (p *reportStmts) insertOutcomes(ctx context.Context, tx *sql.Tx, reports []Report, into map[int64]bool) error {
	var groups []outcomeGroup
	last := -1
	for _, r := range reports {
		if last < 0 || groups[last].status != r.Status || groups[last].device != r.Device || !groups[last].at.Equal(r.At) {
			last = -1
			for i := range groups {
				if g := &groups[i]; g.status == r.Status && g.device == r.Device && g.at.Equal(r.At) {
					last = i
					break
				}
			}
			if last < 0 {
				groups = append(groups, outcomeGroup{status: r.Status, device: r.Device, at: r.At})
				last = len(groups) - 1
			}
		}
		groups[last].positions = append(groups[last].positions, r.Pos)
	}
	st := tx.StmtContext(ctx, p.outcomes)
	for _, g := range groups {
		var device any
		if g.device != "" {
			device = g.device
		}
		got, err := scanPositions(st.QueryContext(ctx, g.status, device, g.at.UTC().Format(sqliteTimeLayout), jsonPositions(g.positions)))
		if err != nil {
			return fmt.Errorf("record outcomes: %w", err)
		}
		for _, pos := range got {
			into[pos] = true
		}
	}
	return nil
}

// parseReportTime reads a time as SQLite stores ours, in UTC: text in
// sqliteTimeLayout ("2006-01-02 15:04:05.123456789+00:00", the fraction
// optional and trimmed) as the inserts write it, or in the driver's own
// layout for a bound time.Time ("... +0000 UTC", the claims'), without
// time.Parse; any other text goes to asTime, then to the driver's layout.
func parseReportTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return asTime(v)
	}
	if t, ok := fastUTC(s); ok {
		return t, nil
	}
	t, err := asTime(v)
	if err != nil {
		if t, derr := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", s); derr == nil {
			return t.UTC(), nil
		}
	}
	return t, err
}

// fastUTC parses "2006-01-02 15:04:05[.fraction]" followed by "+00:00" or
// " +0000 UTC"; ok is false for anything else.
func fastUTC(s string) (time.Time, bool) {
	rest, ok := strings.CutSuffix(s, "+00:00")
	if !ok {
		if rest, ok = strings.CutSuffix(s, " +0000 UTC"); !ok {
			return time.Time{}, false
		}
	}
	if len(rest) < 19 || rest[4] != '-' || rest[7] != '-' || rest[10] != ' ' || rest[13] != ':' || rest[16] != ':' {
		return time.Time{}, false
	}
	num := func(from, to int) int {
		n := 0
		for i := from; i < to; i++ {
			c := rest[i]
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day, hour, minute, sec := num(0, 4), num(5, 7), num(8, 10), num(11, 13), num(14, 16), num(17, 19)
	nsec, frac := 0, rest[19:]
	switch {
	case frac == "":
	case frac[0] == '.' && len(frac) >= 2 && len(frac) <= 10:
		nsec = num(20, len(rest))
		for range 10 - len(frac) {
			nsec *= 10
		}
	default:
		nsec = -1
	}
	if year < 0 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 || nsec < 0 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if t.Day() != day { // 31 November and the like: let time.Parse refuse it
		return time.Time{}, false
	}
	return t, true
}
