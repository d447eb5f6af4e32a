package rpcapi

import (
	"context"
	"net/http"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// Bounds of the lease settings (contract §12).
const (
	MinLeaseSeconds = 60
	MaxLeaseSeconds = 86400
	MaxMaxAttempts  = 100
)

// Errors of the settings requests, one per field.
var (
	ErrInvalidLeaseSeconds  = apperr.New(http.StatusBadRequest, "invalid_settings", "Invalid leaseSeconds (0, or 60-86400)")
	ErrInvalidOnLeaseExpiry = apperr.New(http.StatusBadRequest, "invalid_settings", `Invalid onLeaseExpiry ("requeue" or "expire")`)
	ErrInvalidMaxAttempts   = apperr.New(http.StatusBadRequest, "invalid_settings", "Invalid maxAttempts (1-100)")
)

// Settings answers the per-account lease settings requests. The queue owns
// them because every claim reads them (in the claim statement itself).
type Settings struct{ st *store.Store }

// NewSettings returns the settings handlers.
func NewSettings(st *store.Store) *Settings { return &Settings{st: st} }

// Register serves the handlers on n's settings subjects.
func (s *Settings) Register(srv *rpc.Server, n events.Names) error {
	if err := rpc.Handle(srv, n.QueueSettingsGet(), "settings-get", s.Get); err != nil {
		return err
	}
	return rpc.Handle(srv, n.QueueSettingsSet(), "settings-set", s.Set)
}

// Get answers the account's settings (the defaults if never changed).
func (s *Settings) Get(ctx context.Context, req events.SettingsGetRequest) (events.Settings, error) {
	if req.AccountID <= 0 {
		return events.Settings{}, errBadAccount
	}
	cur, err := s.st.GetSettings(ctx, req.AccountID)
	if err != nil {
		return events.Settings{}, err
	}
	return toEvent(cur), nil
}

// Set changes the fields given, validated, and answers the settings as
// stored. They apply to claims made from then on. Two changes at once
// each apply whole; the later write wins.
func (s *Settings) Set(ctx context.Context, req events.SettingsSetRequest) (events.Settings, error) {
	if req.AccountID <= 0 {
		return events.Settings{}, errBadAccount
	}
	cur, err := s.st.GetSettings(ctx, req.AccountID)
	if err != nil {
		return events.Settings{}, err
	}
	if v := req.LeaseSeconds; v != nil {
		if *v != 0 && (*v < MinLeaseSeconds || *v > MaxLeaseSeconds) {
			return events.Settings{}, ErrInvalidLeaseSeconds
		}
		cur.LeaseSeconds = *v
	}
	if v := req.OnLeaseExpiry; v != nil {
		if *v != events.LeaseRequeue && *v != events.LeaseExpire {
			return events.Settings{}, ErrInvalidOnLeaseExpiry
		}
		cur.OnExpiry = *v
	}
	if v := req.MaxAttempts; v != nil {
		if *v < 1 || *v > MaxMaxAttempts {
			return events.Settings{}, ErrInvalidMaxAttempts
		}
		cur.MaxAttempts = *v
	}
	if err := s.st.PutSettings(ctx, req.AccountID, cur); err != nil {
		return events.Settings{}, err
	}
	return toEvent(cur), nil
}

func toEvent(s store.Settings) events.Settings {
	return events.Settings{LeaseSeconds: s.LeaseSeconds, OnLeaseExpiry: s.OnExpiry, MaxAttempts: s.MaxAttempts}
}
