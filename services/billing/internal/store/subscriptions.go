package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/services/billing/internal/domain"
)

// PutSubscription replaces the subscription of account id with sub (started
// again, not ended) and returns it as stored. Unknown account:
// domain.ErrAccountNotFound.
func (s *Store) PutSubscription(ctx context.Context, id int64, sub domain.Subscription) (domain.Subscription, error) {
	m := subscriptionModel{
		AccountID: id, Plan: sub.Plan, MonthlyLimit: sub.MonthlyLimit, RateLimitPerMinute: sub.RateLimitPerMinute,
		ExpiresAt: storeTime(sub.ExpiresAt), StartedAt: storeTime(sub.StartedAt),
	}
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := accountExists(ctx, tx, id); err != nil {
			return err
		}
		_, err := tx.NewInsert().Model(&m).
			On("CONFLICT (account_id) DO UPDATE").
			Set("plan = EXCLUDED.plan").
			Set("monthly_limit = EXCLUDED.monthly_limit").
			Set("rate_limit_per_minute = EXCLUDED.rate_limit_per_minute").
			Set("expires_at = EXCLUDED.expires_at").
			Set("started_at = EXCLUDED.started_at").
			Set("ended_at = NULL").
			Exec(ctx)
		return err
	})
	if err != nil {
		return domain.Subscription{}, wrap("put subscription", err)
	}
	return m.domain(), nil
}

// EndSubscription ends the subscription of account id at now (an already
// ended one keeps its end time) and returns it. Unknown account:
// domain.ErrAccountNotFound; no subscription: domain.ErrSubscriptionNotFound.
func (s *Store) EndSubscription(ctx context.Context, id int64, now time.Time) (domain.Subscription, error) {
	var sub *domain.Subscription
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := accountExists(ctx, tx, id); err != nil {
			return err
		}
		_, err := tx.NewUpdate().Model((*subscriptionModel)(nil)).
			Set("ended_at = ?", storeTime(now)).
			Where("account_id = ? AND ended_at IS NULL", id).Exec(ctx)
		if err != nil {
			return err
		}
		if sub, err = s.subscription(ctx, tx, id); err != nil {
			return err
		}
		if sub == nil {
			return domain.ErrSubscriptionNotFound
		}
		return nil
	})
	if err != nil {
		return domain.Subscription{}, wrap("end subscription", err)
	}
	return *sub, nil
}

func accountExists(ctx context.Context, db bun.IDB, id int64) error {
	var found int64
	err := db.NewSelect().Model((*accountModel)(nil)).Column("id").Where("id = ?", id).Scan(ctx, &found)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.ErrAccountNotFound
	}
	return err
}

// wrap adds context to unexpected errors and leaves domain errors as they are.
func wrap(what string, err error) error {
	if errors.Is(err, domain.ErrAccountNotFound) || errors.Is(err, domain.ErrSubscriptionNotFound) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}
