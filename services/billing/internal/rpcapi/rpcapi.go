// Package rpcapi answers billing's NATS requests: auth, reserve, release.
package rpcapi

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"time"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/timestamp"
	"github.com/apitosms/apitosms/libs/token"
	"github.com/apitosms/apitosms/services/billing/internal/changes"
	"github.com/apitosms/apitosms/services/billing/internal/domain"
	"github.com/apitosms/apitosms/services/billing/internal/metrics"
	"github.com/apitosms/apitosms/services/billing/internal/store"
)

var (
	errBadCount = apperr.New(http.StatusBadRequest, "bad_request", "count must not be negative")
	errBadMonth = apperr.New(http.StatusBadRequest, "bad_request", "month must look like 2026-01")
	errTooMany  = apperr.New(http.StatusBadRequest, "bad_request", "too many reservations in one call")
)

// API holds the handlers.
type API struct {
	store    *store.Store
	reserver *Reserver
	metrics  *metrics.Metrics
	changed  *changes.Notifier // tells ingress caches of usage given back
	now      func() time.Time
}

// New returns the handlers; reservations go through reserver, and changed
// (may be nil) learns the accounts whose usage a release lowered.
func New(st *store.Store, reserver *Reserver, m *metrics.Metrics, changed *changes.Notifier) *API {
	return &API{store: st, reserver: reserver, metrics: m, changed: changed, now: time.Now}
}

// Register subscribes the handlers on srv under the subjects of names.
func (a *API) Register(srv *rpc.Server, names events.Names) error {
	if err := rpc.Handle(srv, names.BillingAuth(), "auth", a.Auth); err != nil {
		return err
	}
	if err := rpc.Handle(srv, names.BillingReserve(), "reserve", a.Reserve); err != nil {
		return err
	}
	if err := rpc.Handle(srv, names.BillingReserveMany(), "reserve-many", a.ReserveMany); err != nil {
		return err
	}
	if err := rpc.Handle(srv, names.BillingAccount(), "account", a.Account); err != nil {
		return err
	}
	if err := rpc.Handle(srv, names.BillingAccounts(), "accounts", a.Accounts); err != nil {
		return err
	}
	if err := rpc.Handle(srv, names.BillingRotateToken(), "rotate-token", a.RotateToken); err != nil {
		return err
	}
	return rpc.Handle(srv, names.BillingRelease(), "release", a.Release)
}

// Auth describes the account holding the token of req.TokenDigest, or fails
// with apperr.ErrInvalidToken.
func (a *API) Auth(ctx context.Context, req events.AuthRequest) (events.AuthReply, error) {
	if !token.WellFormed(req.TokenDigest) {
		return events.AuthReply{}, apperr.ErrInvalidToken
	}
	now := a.now()
	info, err := a.store.AuthByDigest(ctx, req.TokenDigest, timestamp.Month(now))
	if errors.Is(err, sql.ErrNoRows) {
		return events.AuthReply{}, apperr.ErrInvalidToken
	}
	if err != nil {
		return events.AuthReply{}, err
	}
	if !token.Equal(info.TokenDigest, req.TokenDigest) {
		return events.AuthReply{}, apperr.ErrInvalidToken
	}
	return events.AuthReply{
		AccountID:          info.AccountID,
		RateLimitPerMinute: domain.RateLimit(info.Subscription),
		SubscriptionActive: info.Subscription != nil && info.Subscription.Active(now),
		MonthlyLimit:       domain.Limit(info.Subscription, now),
		Used:               info.Used,
	}, nil
}

// Reserve takes up to req.Count messages from this month's quota (group
// committed with concurrent reservations). No active subscription grants 0;
// an unknown account is domain.ErrAccountNotFound.
func (a *API) Reserve(ctx context.Context, req events.ReserveRequest) (events.ReserveReply, error) {
	if req.Count < 0 {
		return events.ReserveReply{}, errBadCount
	}
	g, err := a.reserver.Reserve(ctx, domain.Reservation{AccountID: req.AccountID, Count: req.Count})
	if err != nil {
		return events.ReserveReply{}, err
	}
	return a.granted(req.Count, g), nil
}

// maxReserveMany bounds the items of one ReserveMany call.
const maxReserveMany = 4096

// ReserveMany applies req.Items in order, in one transaction with
// concurrent reservations: each item's answer is the one Reserve would have
// given it, in that order. An item for an unknown account gets
// account_not_found alone; a negative count fails the whole call (nothing
// reserved).
func (a *API) ReserveMany(ctx context.Context, req events.ReserveManyRequest) (events.ReserveManyReply, error) {
	if len(req.Items) > maxReserveMany {
		return events.ReserveManyReply{}, errTooMany
	}
	rs := make([]domain.Reservation, len(req.Items))
	for i, it := range req.Items {
		if it.Count < 0 {
			return events.ReserveManyReply{}, errBadCount
		}
		rs[i] = domain.Reservation{AccountID: it.AccountID, Count: it.Count}
	}
	gs, err := a.reserver.ReserveMany(ctx, rs)
	if err != nil {
		return events.ReserveManyReply{}, err
	}
	out := events.ReserveManyReply{Items: make([]events.ReserveOutcome, len(gs))}
	for i, g := range gs {
		if g.Err != nil {
			e, ok := apperr.As(g.Err)
			if !ok {
				return events.ReserveManyReply{}, g.Err
			}
			out.Items[i].Err = &events.ItemError{Status: e.Status, Code: e.Code, Message: e.Message}
			continue
		}
		out.Items[i].ReserveReply = a.granted(req.Items[i].Count, g)
	}
	return out, nil
}

// granted counts a grant for count messages in the metrics and answers it.
func (a *API) granted(count int, g domain.Grant) events.ReserveReply {
	outcome := metrics.OutcomeGranted
	switch {
	case !g.SubscriptionActive:
		outcome = metrics.OutcomeNoSubscription
	case g.Granted == 0 && count > 0:
		outcome = metrics.OutcomeExhausted
	case g.Granted < count:
		outcome = metrics.OutcomePartial
	}
	a.metrics.Reservations.WithLabelValues(outcome).Inc()
	a.metrics.Reserved.Add(float64(g.Granted))
	return events.ReserveReply{
		Granted: g.Granted, Used: g.Used, Limit: g.Limit, Month: g.Month,
		SubscriptionActive: g.SubscriptionActive,
	}
}

// Release gives back req.Count messages of req.Month (never below 0).
func (a *API) Release(ctx context.Context, req events.ReleaseRequest) (events.ReleaseReply, error) {
	if req.Count < 0 {
		return events.ReleaseReply{}, errBadCount
	}
	if _, err := time.Parse("2006-01", req.Month); err != nil {
		return events.ReleaseReply{}, errBadMonth
	}
	if req.Count == 0 {
		return events.ReleaseReply{}, nil
	}
	if err := a.store.Release(ctx, req.AccountID, req.Month, req.Count); err != nil {
		return events.ReleaseReply{}, err
	}
	// A cached lookup may say the limit is used up; it no longer is.
	a.changed.Released(req.AccountID)
	a.metrics.Released.Add(float64(req.Count))
	return events.ReleaseReply{}, nil
}
