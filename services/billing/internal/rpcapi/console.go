package rpcapi

import (
	"context"
	"net/http"
	"time"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/timestamp"
	"github.com/apitosms/apitosms/libs/token"
	"github.com/apitosms/apitosms/services/billing/internal/domain"
	"github.com/apitosms/apitosms/services/billing/internal/store"
)

// The console's requests (libs/events/console.go): it shows an account,
// lists them for the operator and rotates a token, as the operator API does.

var errBadPage = apperr.New(http.StatusBadRequest, "invalid_limit", "Invalid limit")

// maxAccountsPage bounds one AccountsRequest (as GET /admin/v1/accounts).
const maxAccountsPage = 200

// Account describes account req.AccountID, or fails with
// domain.ErrAccountNotFound.
func (a *API) Account(ctx context.Context, req events.AccountRequest) (events.AccountReply, error) {
	now := a.now()
	month := timestamp.Month(now)
	v, err := a.store.Account(ctx, req.AccountID, month)
	if err != nil {
		return events.AccountReply{}, err
	}
	out := accountReply(v, month, a)
	hist, err := a.store.UsageHistory(ctx, req.AccountID, events.UsageMonths)
	if err != nil {
		return events.AccountReply{}, err
	}
	for _, h := range hist {
		out.History = append(out.History, events.MonthUsage{Month: h.Month, Used: h.Used})
	}
	return out, nil
}

// Accounts lists accounts like GET /admin/v1/accounts.
func (a *API) Accounts(ctx context.Context, req events.AccountsRequest) (events.AccountsReply, error) {
	if req.Limit < 1 || req.After < 0 {
		return events.AccountsReply{}, errBadPage
	}
	limit := min(req.Limit, maxAccountsPage)
	now := a.now()
	month := timestamp.Month(now)
	views, err := a.store.ListAccounts(ctx, req.Query, req.After, limit+1, month)
	if err != nil {
		return events.AccountsReply{}, err
	}
	var out events.AccountsReply
	if len(views) > limit {
		views = views[:limit]
		out.Next = views[limit-1].Account.ID
	}
	out.Accounts = make([]events.AccountReply, len(views))
	for i, v := range views {
		out.Accounts[i] = accountReply(v, month, a)
	}
	return out, nil
}

// RotateToken gives account req.AccountID a new token (the old one fails at
// once) and returns it.
func (a *API) RotateToken(ctx context.Context, req events.AccountRequest) (events.TokenReply, error) {
	tok := token.New()
	if err := a.store.RotateToken(ctx, req.AccountID, token.Digest(tok)); err != nil {
		return events.TokenReply{}, err
	}
	a.changed.Changed(req.AccountID) // the old token stops working in ingress caches too
	return events.TokenReply{APIToken: tok}, nil
}

func accountReply(v store.AccountView, month string, a *API) events.AccountReply {
	now := a.now()
	out := events.AccountReply{
		ID: v.Account.ID, Name: v.Account.Name, Email: v.Account.Email, Month: month, Used: v.Used,
		MonthlyLimit: domain.Limit(v.Subscription, now), RateLimitPerMinute: domain.RateLimit(v.Subscription),
	}
	if v.Subscription != nil {
		out.Plan = v.Subscription.Plan
		out.SubscriptionActive = v.Subscription.Active(now)
		for _, d := range []struct {
			t   time.Time
			out *string
		}{{v.Subscription.StartedAt, &out.StartedAt}, {v.Subscription.ExpiresAt, &out.ExpiresAt}, {v.Subscription.EndedAt, &out.EndedAt}} {
			if !d.t.IsZero() {
				*d.out = timestamp.Format(d.t)
			}
		}
	}
	return out
}
