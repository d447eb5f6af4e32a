package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Phones (contract §11). Ingress sends when each phone was last seen in
// batches every few seconds (SeePhones); reports count the day's outcomes
// per device (RecordReports); CheckPhones flips phones offline and online.
// Times are Unix milliseconds, 0 = never.

// PhoneSeen is when a phone last pulled and last reported (0: unknown).
type PhoneSeen struct {
	AccountID int64
	Device    string
	PullMs    int64
	ReportMs  int64
}

// Phone is a phone's row.
type Phone struct {
	AccountID   int64
	Device      string
	PullMs      int64
	ReportMs    int64
	SeenMs      int64
	Day         string // the UTC day SentToday and FailedToday count
	SentToday   int64
	FailedToday int64
}

// greatest is the SQL of the larger of two integers.
func (s *Store) greatest(a, b string) string {
	if s.pg {
		return "GREATEST(" + a + ", " + b + ")"
	}
	return "MAX(" + a + ", " + b + ")"
}

// SeePhones stores when phones were last seen, never moving a time back, in
// one statement per 500 phones. Phones of one account and device are merged.
func (s *Store) SeePhones(ctx context.Context, seen []PhoneSeen) error {
	if len(seen) == 0 {
		return nil
	}
	// One row per key, in key order (concurrent upserts lock in one order).
	slices.SortFunc(seen, func(a, b PhoneSeen) int {
		if a.AccountID != b.AccountID {
			return int(a.AccountID - b.AccountID)
		}
		return strings.Compare(a.Device, b.Device)
	})
	merged := seen[:0:0]
	for _, p := range seen {
		if n := len(merged); n > 0 && merged[n-1].AccountID == p.AccountID && merged[n-1].Device == p.Device {
			merged[n-1].PullMs = max(merged[n-1].PullMs, p.PullMs)
			merged[n-1].ReportMs = max(merged[n-1].ReportMs, p.ReportMs)
			continue
		}
		merged = append(merged, p)
	}
	var b strings.Builder
	for rest := merged; len(rest) > 0; {
		n := min(len(rest), 500)
		b.Reset()
		b.WriteString("INSERT INTO phones (account_id, device, last_pull_ms, last_report_ms, last_seen_ms) VALUES ")
		args := make([]any, 0, 5*n)
		for i, p := range rest[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			s.placeholders(&b, 5*i+1, 5)
			b.WriteByte(')')
			args = append(args, p.AccountID, p.Device, p.PullMs, p.ReportMs, max(p.PullMs, p.ReportMs))
		}
		b.WriteString(" ON CONFLICT (account_id, device) DO UPDATE SET last_pull_ms = " + s.greatest("phones.last_pull_ms", "excluded.last_pull_ms") +
			", last_report_ms = " + s.greatest("phones.last_report_ms", "excluded.last_report_ms") +
			", last_seen_ms = " + s.greatest("phones.last_seen_ms", "excluded.last_seen_ms"))
		if _, err := s.sqlDB().ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("see phones: %w", err)
		}
		rest = rest[n:]
	}
	return nil
}

// phoneCount is the outcomes one report batch recorded for one phone on one day.
type phoneCount struct {
	account      int64
	device       string
	day          string
	sent, failed int64
	atMs         int64
}

// countPhones adds recorded outcomes to their phones' day counters (and
// their last report time) in tx. A count for an earlier day than the row's
// is dropped (that day is over); a later day starts the counters again.
// On SQLite it runs stmts' prepared statement.
func (s *Store) countPhones(ctx context.Context, tx *sql.Tx, stmts *reportStmts, counts []phoneCount) error {
	if len(counts) == 0 {
		return nil
	}
	slices.SortFunc(counts, func(a, b phoneCount) int {
		if a.account != b.account {
			return int(a.account - b.account)
		}
		if c := strings.Compare(a.device, b.device); c != 0 {
			return c
		}
		return strings.Compare(a.day, b.day)
	})
	exec := func(args ...any) (sql.Result, error) { return tx.ExecContext(ctx, s.countPhonesSQL(), args...) }
	if stmts != nil { // SQLite: prepared once
		exec = func(args ...any) (sql.Result, error) {
			return tx.StmtContext(ctx, stmts.phone).ExecContext(ctx, args...)
		}
	}
	for _, c := range counts {
		if _, err := exec(c.account, c.device, c.atMs, c.atMs, c.day, c.sent, c.failed); err != nil {
			return fmt.Errorf("count phone outcomes: %w", err)
		}
	}
	return nil
}

// countPhonesSQL upserts one phone's day count: (account, device, last
// report ms, last seen ms, day, sent, failed).
func (s *Store) countPhonesSQL() string {
	// Constant SQL and placeholders only: values go as arguments.
	return "INSERT INTO phones (account_id, device, last_report_ms, last_seen_ms, day, sent_today, failed_today) VALUES (" + //nolint:gosec // G202: see above
		s.param(1) + ", " + s.param(2) + ", " + s.param(3) + ", " + s.param(4) + ", " + s.param(5) + ", " + s.param(6) + ", " + s.param(7) + ")" +
		" ON CONFLICT (account_id, device) DO UPDATE SET" +
		" sent_today = CASE WHEN phones.day = excluded.day THEN phones.sent_today + excluded.sent_today WHEN phones.day < excluded.day THEN excluded.sent_today ELSE phones.sent_today END," +
		" failed_today = CASE WHEN phones.day = excluded.day THEN phones.failed_today + excluded.failed_today WHEN phones.day < excluded.day THEN excluded.failed_today ELSE phones.failed_today END," +
		" day = CASE WHEN phones.day < excluded.day THEN excluded.day ELSE phones.day END," +
		" last_report_ms = " + s.greatest("phones.last_report_ms", "excluded.last_report_ms") + "," +
		" last_seen_ms = " + s.greatest("phones.last_seen_ms", "excluded.last_seen_ms")
}

// Phones returns the account's phones by device name.
func (s *Store) Phones(ctx context.Context, accountID int64) ([]Phone, error) {
	rows, err := s.readDB().QueryContext(ctx, "SELECT device, last_pull_ms, last_report_ms, last_seen_ms, day, sent_today, failed_today"+
		" FROM phones WHERE account_id = "+s.param(1)+" ORDER BY device", accountID)
	if err != nil {
		return nil, fmt.Errorf("phones: %w", err)
	}
	defer rows.Close()
	var out []Phone
	for rows.Next() {
		p := Phone{AccountID: accountID}
		if err := rows.Scan(&p.Device, &p.PullMs, &p.ReportMs, &p.SeenMs, &p.Day, &p.SentToday, &p.FailedToday); err != nil {
			return nil, fmt.Errorf("phones: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// PhoneEvent is a phone.offline (Online false) or phone.online transition
// whose event is still to be published.
type PhoneEvent struct {
	AccountID int64
	Device    string
	Online    bool
	SeenMs    int64
	Seq       int64 // numbers the phone's transitions: part of the event id
}

// CheckPhones flips to offline the phones not seen since cutoff while
// messages wait for their account, and back to online those seen since,
// each with one conditional UPDATE (so of replicas checking at once, one
// flips a phone), marking the transition's event due; it returns every
// event due (flipped now, or earlier and not published: PhoneEventsPublished).
func (s *Store) CheckPhones(ctx context.Context, cutoff time.Time) ([]PhoneEvent, error) {
	cut := cutoff.UnixMilli()
	offline := "UPDATE phones SET offline = 1, event_due = 1, event_seq = event_seq + 1" +
		" WHERE offline = 0 AND last_seen_ms > 0 AND last_seen_ms < " + s.param(1) +
		" AND EXISTS (SELECT 1 FROM messages m WHERE m.account_id = phones.account_id AND m.status = 0)"
	if _, err := s.sqlDB().ExecContext(ctx, offline, cut); err != nil {
		return nil, fmt.Errorf("phones offline: %w", err)
	}
	online := "UPDATE phones SET offline = 0, event_due = 2, event_seq = event_seq + 1 WHERE offline = 1 AND last_seen_ms >= " + s.param(1)
	if _, err := s.sqlDB().ExecContext(ctx, online, cut); err != nil {
		return nil, fmt.Errorf("phones online: %w", err)
	}
	rows, err := s.sqlDB().QueryContext(ctx, "SELECT account_id, device, event_due, last_seen_ms, event_seq FROM phones WHERE event_due <> 0 ORDER BY account_id, device LIMIT 1000")
	if err != nil {
		return nil, fmt.Errorf("due phone events: %w", err)
	}
	defer rows.Close()
	var out []PhoneEvent
	for rows.Next() {
		var e PhoneEvent
		var due int
		if err := rows.Scan(&e.AccountID, &e.Device, &due, &e.SeenMs, &e.Seq); err != nil {
			return nil, fmt.Errorf("due phone events: %w", err)
		}
		e.Online = due == 2
		out = append(out, e)
	}
	return out, rows.Err()
}

// PhoneEventsPublished clears the events due of evs (unless the phone
// moved on to another transition meanwhile).
func (s *Store) PhoneEventsPublished(ctx context.Context, evs []PhoneEvent) error {
	q := "UPDATE phones SET event_due = 0 WHERE account_id = " + s.param(1) + " AND device = " + s.param(2) + " AND event_seq = " + s.param(3)
	for _, e := range evs {
		if _, err := s.sqlDB().ExecContext(ctx, q, e.AccountID, e.Device, e.Seq); err != nil {
			return fmt.Errorf("phone events published: %w", err)
		}
	}
	return nil
}
