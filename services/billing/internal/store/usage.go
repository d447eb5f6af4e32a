package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/timestamp"
	"github.com/apitosms/apitosms/services/billing/internal/domain"
)

// ReserveBatch applies rs in one transaction, in order: each result is what
// applying that reservation alone, right after the ones before it, would
// give. Usage never exceeds the limit, also when several processes reserve
// on one database at once: on PostgreSQL the usage rows are locked (SELECT
// ... FOR UPDATE, in account order so batches never deadlock); SQLite runs
// one write transaction at a time. Month is the calendar month of now (UTC).
// A reservation for an unknown account gets Err domain.ErrAccountNotFound.
//
// A reservation taking usage across 80% of the limit or to the limit gets
// the event in Grant.Crossed, once per account and month (the usage row
// remembers which fired, in the same transaction, under the same lock), and
// the event is left due on the row: publish it, then PublishedQuotaEvents;
// DueQuotaEvents finds those a crash left behind.
func (s *Store) ReserveBatch(ctx context.Context, now time.Time, rs []domain.Reservation) ([]domain.Grant, error) {
	month := timestamp.Month(now)
	ids := make([]int64, 0, len(rs))
	for _, r := range rs {
		ids = append(ids, r.AccountID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)

	if !s.pg {
		return s.reserveSQLite(ctx, now, month, ids, rs)
	}
	var grants []domain.Grant
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var known []int64
		err := tx.NewSelect().Model((*accountModel)(nil)).Column("id").
			Where("id IN (?)", bun.List(ids)).Order("id").Scan(ctx, &known)
		if err != nil {
			return fmt.Errorf("select accounts: %w", err)
		}
		q := newQuota(len(known))
		if len(known) > 0 {
			if err := s.loadQuota(ctx, tx, known, month, now, q.limits, q.used, q.fired); err != nil {
				return err
			}
		}
		grants = q.apply(month, rs)
		if err := s.writeUsage(ctx, tx, month, q.before, q.used); err != nil {
			return err
		}
		return s.writeFired(ctx, tx, month, q.firedBefore, q.fired)
	})
	if err != nil {
		return nil, err
	}
	return grants, nil
}

// quota is what a reservation batch reads and changes: per account, the
// limit (only accounts with an active subscription), usage and the quota
// events fired this month, before and after the batch.
type quota struct {
	limits      map[int64]int64
	used        map[int64]int64 // every known account
	fired       map[int64]int
	before      map[int64]int64
	firedBefore map[int64]int
}

func newQuota(n int) *quota {
	return &quota{limits: make(map[int64]int64, n), used: make(map[int64]int64, n), fired: make(map[int64]int, n)}
}

// apply takes rs, in order, from the counters read (used, fired, limits),
// remembering those in before and firedBefore first.
func (q *quota) apply(month string, rs []domain.Reservation) []domain.Grant {
	q.before = make(map[int64]int64, len(q.used))
	for id, u := range q.used {
		q.before[id] = u
	}
	q.firedBefore = make(map[int64]int, len(q.fired))
	for id, f := range q.fired {
		q.firedBefore[id] = f
	}
	grants := make([]domain.Grant, len(rs))
	for i, r := range rs {
		u, ok := q.used[r.AccountID]
		if !ok {
			grants[i] = domain.Grant{Month: month, Err: domain.ErrAccountNotFound}
			continue
		}
		limit, active := q.limits[r.AccountID]
		g := domain.Grant{Month: month, Limit: limit, SubscriptionActive: active}
		if active {
			g.Granted = domain.Take(u, limit, r.Count)
			g.Crossed = domain.QuotaCrossed(u, u+int64(g.Granted), limit) &^ q.fired[r.AccountID]
			q.fired[r.AccountID] |= g.Crossed
			u += int64(g.Granted)
			q.used[r.AccountID] = u
		}
		g.Used = u
		grants[i] = g
	}
	return grants
}

// loadQuota fills limits (accounts whose subscription is active at now) and
// used (every account of ids, this month), locking the usage rows.
func (s *Store) loadQuota(ctx context.Context, tx bun.Tx, ids []int64, month string, now time.Time, limits, used map[int64]int64, fired map[int64]int) error {
	var subs []subscriptionModel
	if err := tx.NewSelect().Model(&subs).Where("account_id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
		return fmt.Errorf("select subscriptions: %w", err)
	}
	for _, m := range subs {
		if sub := m.domain(); sub.Active(now) {
			limits[m.AccountID] = sub.MonthlyLimit
		}
	}
	// Make sure every usage row exists so that it can be locked. Rows are
	// inserted in account order, like the locks below.
	rows := make([]usageModel, len(ids))
	for i, id := range ids {
		rows[i] = usageModel{AccountID: id, Month: month}
	}
	if _, err := tx.NewInsert().Model(&rows).On("CONFLICT DO NOTHING").Exec(ctx); err != nil {
		return fmt.Errorf("insert usage: %w", err)
	}
	var locked []usageModel
	q := tx.NewSelect().Model(&locked).
		Where("month = ? AND account_id IN (?)", month, bun.List(ids)).Order("account_id")
	if s.pg {
		q = q.For("UPDATE")
	}
	if err := q.Scan(ctx); err != nil {
		return fmt.Errorf("lock usage: %w", err)
	}
	for _, m := range locked {
		used[m.AccountID] = m.Used
		fired[m.AccountID] = m.Fired
	}
	return nil
}

// writeUsage stores the counters that changed, in one statement.
func (s *Store) writeUsage(ctx context.Context, tx bun.Tx, month string, before, after map[int64]int64) error {
	var changed []int64
	for id, u := range after {
		if before[id] != u {
			changed = append(changed, id)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	slices.Sort(changed)
	var q strings.Builder
	args := make([]any, 0, 2*len(changed)+2)
	q.WriteString("UPDATE usage SET used = CASE account_id")
	for _, id := range changed {
		q.WriteString(" WHEN ? THEN ?")
		args = append(args, id, after[id])
	}
	q.WriteString(" END WHERE month = ? AND account_id IN (?)")
	args = append(args, month, bun.List(changed))
	if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("update usage: %w", err)
	}
	return nil
}

// writeFired marks the quota events that fired in this transaction as fired
// and due (to be published).
func (s *Store) writeFired(ctx context.Context, tx bun.Tx, month string, before, after map[int64]int) error {
	for id, f := range after {
		added := f &^ before[id]
		if added == 0 {
			continue
		}
		_, err := tx.NewUpdate().Model((*usageModel)(nil)).
			Set("events_fired = ?", f).
			Set("events_due = events_due | ?", added).
			Where("account_id = ? AND month = ?", id, month).Exec(ctx)
		if err != nil {
			return fmt.Errorf("mark quota events: %w", err)
		}
	}
	return nil
}

// QuotaEvent is a quota event fired and maybe not published yet.
type QuotaEvent struct {
	AccountID int64
	Month     string
	Event     int   // domain.QuotaWarning or domain.QuotaExhausted
	Used      int64 // usage now
	Limit     int64 // the current monthly limit (0 without a subscription)
}

// DueQuotaEvents lists up to limit quota events fired but not marked
// published (PublishedQuotaEvents): a process died between the reservation
// and the publish, or the publish failed.
func (s *Store) DueQuotaEvents(ctx context.Context, limit int) ([]QuotaEvent, error) {
	var rows []struct {
		AccountID int64  `bun:"account_id"`
		Month     string `bun:"month"`
		Used      int64  `bun:"used"`
		Due       int    `bun:"events_due"`
		Limit     int64  `bun:"monthly_limit"`
	}
	err := s.db.NewSelect().TableExpr("usage AS u").
		ColumnExpr("u.account_id, u.month, u.used, u.events_due, COALESCE(s.monthly_limit, 0) AS monthly_limit").
		Join("LEFT JOIN subscriptions AS s ON s.account_id = u.account_id").
		Where("u.events_due <> 0").OrderExpr("u.account_id, u.month").Limit(int64(limit)).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("due quota events: %w", err)
	}
	var out []QuotaEvent
	for _, r := range rows {
		for _, ev := range []int{domain.QuotaWarning, domain.QuotaExhausted} {
			if r.Due&ev != 0 {
				out = append(out, QuotaEvent{AccountID: r.AccountID, Month: r.Month, Event: ev, Used: r.Used, Limit: r.Limit})
			}
		}
	}
	return out, nil
}

// PublishedQuotaEvents marks events published (no longer due).
func (s *Store) PublishedQuotaEvents(ctx context.Context, evs []QuotaEvent) error {
	for _, ev := range evs {
		_, err := s.db.NewUpdate().Model((*usageModel)(nil)).
			Set("events_due = events_due & ?", ^ev.Event&3).
			Where("account_id = ? AND month = ?", ev.AccountID, ev.Month).Exec(ctx)
		if err != nil {
			return fmt.Errorf("mark quota events published: %w", err)
		}
	}
	return nil
}

// Release gives back count messages of account id's usage in month, never
// going below 0. Unknown accounts and months are ignored.
func (s *Store) Release(ctx context.Context, id int64, month string, count int) error {
	_, err := s.db.NewUpdate().Model((*usageModel)(nil)).
		Set("used = CASE WHEN used > ? THEN used - ? ELSE 0 END", count, count).
		Where("account_id = ? AND month = ?", id, month).Exec(ctx)
	if err != nil {
		return fmt.Errorf("release usage: %w", err)
	}
	return nil
}

// MonthUsage is one month's count of an account.
type MonthUsage struct {
	Month string // "2026-12"
	Used  int64
}

// UsageHistory returns account id's counted messages per month, newest
// first, at most months of them (months without a message have no row).
func (s *Store) UsageHistory(ctx context.Context, id int64, months int) ([]MonthUsage, error) {
	var rows []usageModel
	if err := s.db.NewSelect().Model(&rows).Column("month", "used").Where("account_id = ?", id).
		Order("month DESC").Limit(int64(months)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("usage history: %w", err)
	}
	out := make([]MonthUsage, len(rows))
	for i, r := range rows {
		out[i] = MonthUsage{Month: r.Month, Used: r.Used}
	}
	return out, nil
}
