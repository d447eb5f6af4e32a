package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/services/billing/internal/domain"
)

// ListAccounts returns up to limit accounts with id above after, by id
// ascending (a keyset: following pages never skip or repeat an account,
// whatever is created meanwhile), each with its subscription and its usage
// of month. A non-blank query keeps the accounts whose name or email
// contains it (case-insensitive) or whose id it is.
func (s *Store) ListAccounts(ctx context.Context, query string, after int64, limit int, month string) ([]AccountView, error) {
	var accs []accountModel
	q := s.db.NewSelect().Model(&accs).Where("id > ?", after).OrderExpr("id ASC").Limit(int64(limit))
	if query = strings.TrimSpace(query); query != "" {
		like := "%" + escapeLike(strings.ToLower(query)) + "%"
		if id, err := strconv.ParseInt(query, 10, 64); err == nil {
			q = q.Where("(LOWER(name) LIKE ? ESCAPE '\\' OR LOWER(email) LIKE ? ESCAPE '\\' OR id = ?)", like, like, id)
		} else {
			q = q.Where("(LOWER(name) LIKE ? ESCAPE '\\' OR LOWER(email) LIKE ? ESCAPE '\\')", like, like)
		}
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	if len(accs) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(accs))
	for i, a := range accs {
		ids[i] = a.ID
	}
	var subs []subscriptionModel
	if err := s.db.NewSelect().Model(&subs).Where("account_id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	var uses []usageModel
	if err := s.db.NewSelect().Model(&uses).Where("account_id IN (?) AND month = ?", bun.List(ids), month).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list usage: %w", err)
	}
	subOf := make(map[int64]*domain.Subscription, len(subs))
	for _, m := range subs {
		d := m.domain()
		subOf[m.AccountID] = &d
	}
	usedOf := make(map[int64]int64, len(uses))
	for _, u := range uses {
		usedOf[u.AccountID] = u.Used
	}
	out := make([]AccountView, len(accs))
	for i, a := range accs {
		out[i] = AccountView{Account: a.domain(), Subscription: subOf[a.ID], Used: usedOf[a.ID]}
	}
	return out, nil
}

// escapeLike escapes LIKE's wildcards (and the escape character) in s.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
