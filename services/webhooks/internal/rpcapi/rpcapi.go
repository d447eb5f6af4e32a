// Package rpcapi answers the webhooks requests ingress forwards (contract
// §10 endpoints) for the account ingress authenticated. Another account's
// endpoint is answered exactly like an unknown one.
package rpcapi

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/keys"
	"github.com/apitosms/apitosms/libs/timestamp"
	"github.com/apitosms/apitosms/services/webhooks/internal/guard"
	"github.com/apitosms/apitosms/services/webhooks/internal/secret"
	"github.com/apitosms/apitosms/services/webhooks/internal/store"
)

// Limits of the API.
const (
	MaxDescription  = 500 // characters
	MaxPageSize     = 200 // deliveries per page
	DefaultPageSize = 20
)

var (
	errNotFound      = apperr.New(http.StatusNotFound, "webhook_not_found", "Webhook not found")
	errInvalidCursor = apperr.New(http.StatusBadRequest, "invalid_cursor", "Invalid cursor")
	errInvalidLimit  = apperr.New(http.StatusBadRequest, "invalid_limit", "Invalid limit")
	errDisabled      = apperr.New(http.StatusConflict, "webhook_disabled", "Webhook is disabled")
	errDescription   = apperr.New(http.StatusBadRequest, "invalid_body", fmt.Sprintf("description too long (max %d characters)", MaxDescription))
)

// Settings of the API.
type Settings struct {
	MaxEndpoints    int           // per account
	RotationOverlap time.Duration // the old secret keeps signing this long
}

// API handles the requests.
type API struct {
	store  *store.Store
	sealer *keys.Sealer
	guard  *guard.Guard
	nc     *nats.Conn
	js     jetstream.JetStream
	names  events.Names
	set    Settings
	wake   func() // re-enabled endpoints may have events due
	log    *slog.Logger
}

// New returns the API; nc announces changes of subscriptions.
func New(st *store.Store, sealer *keys.Sealer, g *guard.Guard, nc *nats.Conn, js jetstream.JetStream, names events.Names, set Settings, wake func(), log *slog.Logger) *API {
	return &API{store: st, sealer: sealer, guard: g, nc: nc, js: js, names: names, set: set, wake: wake, log: log}
}

// subscription is what account's enabled endpoints receive, from eps (an
// account's enabled endpoints).
func subscription(account int64, eps []store.Endpoint) events.WebhookSubscription {
	sub := events.WebhookSubscription{AccountID: account, Types: []string{}}
	for _, t := range events.NotificationTypes {
		for _, e := range eps {
			if events.DefaultSubscribed(e.EventList(), t) {
				sub.Types = append(sub.Types, t)
				break
			}
		}
	}
	return sub
}

// announce tells every event producer (each queue replica) the account's
// subscribed types as committed now, and returns once the NATS server has
// passed the announcement on to the subscribers' connections (a flush: one
// round trip). A producer reading a message the server sends it later (a
// report of a phone, a claim) has therefore already received it. A failure
// is logged, not returned: the change is committed, and the producers'
// periodic refresh (notify.RefreshEvery) picks it up.
func (a *API) announce(ctx context.Context, account int64) {
	eps, err := a.store.EnabledEndpoints(ctx, []int64{account})
	if err == nil {
		var data []byte
		if data, err = events.Marshal(subscription(account, eps)); err == nil {
			if err = a.nc.Publish(a.names.WebhooksChanged(), data); err == nil {
				err = a.nc.FlushWithContext(ctx)
			}
		}
	}
	if err != nil {
		a.log.Warn("announce webhook subscription change; producers learn it at their next refresh", "err", err)
	}
}

// Subscriptions answers a page of every account's subscribed types.
func (a *API) Subscriptions(ctx context.Context, req events.SubscriptionsRequest) (events.SubscriptionsPage, error) {
	limit := min(max(req.Limit, 1), 10000)
	rows, err := a.store.SubscribedAccounts(ctx, req.After, limit)
	if err != nil {
		return events.SubscriptionsPage{}, err
	}
	page := events.SubscriptionsPage{Accounts: []events.WebhookSubscription{}}
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].AccountID == rows[i].AccountID {
			j++
		}
		page.Accounts = append(page.Accounts, subscription(rows[i].AccountID, rows[i:j]))
		i = j
	}
	page.More = len(page.Accounts) == limit
	return page, nil
}

func (a *API) checkURL(ctx context.Context, raw string) (string, error) {
	u, err := a.guard.CheckURL(ctx, raw)
	if err != nil {
		return "", apperr.New(http.StatusBadRequest, "invalid_url", "Invalid webhook URL: "+err.Error())
	}
	return u, nil
}

// checkEvents validates and de-duplicates a list of event types.
func checkEvents(list []string) ([]string, error) {
	out := make([]string, 0, len(list))
	for _, t := range list {
		if !slices.Contains(events.NotificationTypes, t) {
			if len(t) > 64 {
				t = t[:64]
			}
			return nil, apperr.New(http.StatusBadRequest, "invalid_events", fmt.Sprintf("Unknown event type %q", t))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

func checkDescription(s string) error {
	if utf8.RuneCountInString(s) > MaxDescription || !utf8.ValidString(s) {
		return errDescription
	}
	return nil
}

// view is the contract's shape of an endpoint (no secret).
func view(e store.Endpoint) events.Webhook {
	list := e.EventList()
	if list == nil {
		list = []string{}
	}
	return events.Webhook{
		ID: e.ID, URL: e.URL, Events: list, Batch: e.Batch, Enabled: e.Enabled,
		Description: e.Description, CreatedAt: timestamp.Format(time.UnixMilli(e.CreatedMs)),
		DisabledReason: e.DisabledReason,
	}
}

// Create makes an endpoint and returns it with its secret (shown only here).
func (a *API) Create(ctx context.Context, req events.WebhookCreateRequest) (events.Webhook, error) {
	u, err := a.checkURL(ctx, req.URL)
	if err != nil {
		return events.Webhook{}, err
	}
	list, err := checkEvents(req.Events)
	if err != nil {
		return events.Webhook{}, err
	}
	if err := checkDescription(req.Description); err != nil {
		return events.Webhook{}, err
	}
	sec := secret.Generate()
	now := store.Ms(time.Now())
	e := store.Endpoint{
		ID: store.Endpoints.NewID(), AccountID: req.AccountID, URL: u, Events: strings.Join(list, ","),
		Batch: req.Batch, Enabled: true, Description: req.Description,
		Secret: a.sealer.Seal(sec, nil), CreatedMs: now, UpdatedMs: now,
	}
	if err := a.store.CreateEndpoint(ctx, &e, a.set.MaxEndpoints); err != nil {
		if errors.Is(err, store.ErrTooMany) {
			return events.Webhook{}, apperr.New(http.StatusConflict, "too_many_webhooks",
				fmt.Sprintf("Too many webhooks (max %d)", a.set.MaxEndpoints))
		}
		return events.Webhook{}, err
	}
	a.announce(ctx, e.AccountID)
	v := view(e)
	v.Secret = sec
	return v, nil
}

// List returns every endpoint of the account.
func (a *API) List(ctx context.Context, req events.WebhookListRequest) (events.WebhookList, error) {
	rows, err := a.store.ListEndpoints(ctx, req.AccountID)
	if err != nil {
		return events.WebhookList{}, err
	}
	out := events.WebhookList{Webhooks: make([]events.Webhook, len(rows))}
	for i, e := range rows {
		out.Webhooks[i] = view(e)
	}
	return out, nil
}

func (a *API) get(ctx context.Context, account int64, id string) (store.Endpoint, error) {
	e, err := a.store.GetEndpoint(ctx, account, id)
	if errors.Is(err, store.ErrNotFound) {
		return e, errNotFound
	}
	return e, err
}

// Get returns one endpoint.
func (a *API) Get(ctx context.Context, req events.WebhookRef) (events.Webhook, error) {
	e, err := a.get(ctx, req.AccountID, req.ID)
	if err != nil {
		return events.Webhook{}, err
	}
	return view(e), nil
}

// Update changes the fields given. Enabling a disabled endpoint clears its
// failure record, and its undelivered events are sent again.
func (a *API) Update(ctx context.Context, req events.WebhookUpdateRequest) (events.Webhook, error) {
	e, err := a.get(ctx, req.AccountID, req.ID)
	if err != nil {
		return events.Webhook{}, err
	}
	if req.URL != nil {
		if e.URL, err = a.checkURL(ctx, *req.URL); err != nil {
			return events.Webhook{}, err
		}
	}
	if req.Events != nil {
		list, err := checkEvents(*req.Events)
		if err != nil {
			return events.Webhook{}, err
		}
		e.Events = strings.Join(list, ",")
	}
	if req.Description != nil {
		if err := checkDescription(*req.Description); err != nil {
			return events.Webhook{}, err
		}
		e.Description = *req.Description
	}
	if req.Batch != nil {
		e.Batch = *req.Batch
	}
	enabled := false
	if req.Enabled != nil && *req.Enabled != e.Enabled {
		e.Enabled = *req.Enabled
		e.DisabledReason = ""
		e.FailingSinceMs = 0
		enabled = e.Enabled
	}
	e.UpdatedMs = store.Ms(time.Now())
	if err := a.store.UpdateEndpoint(ctx, &e); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return events.Webhook{}, errNotFound
		}
		return events.Webhook{}, err
	}
	if enabled && a.wake != nil {
		a.wake()
	}
	a.announce(ctx, e.AccountID)
	return view(e), nil
}

// Delete removes an endpoint, its undelivered events and its log.
func (a *API) Delete(ctx context.Context, req events.WebhookRef) (events.WebhookDeleted, error) {
	if !store.Endpoints.WellFormedID(req.ID) {
		return events.WebhookDeleted{}, errNotFound
	}
	if err := a.store.DeleteEndpoint(ctx, req.AccountID, req.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return events.WebhookDeleted{}, errNotFound
		}
		return events.WebhookDeleted{}, err
	}
	a.announce(ctx, req.AccountID)
	return events.WebhookDeleted{Deleted: true}, nil
}

// Rotate replaces the secret; the previous one keeps signing alongside for
// RotationOverlap (a second rotation within it retires the oldest at once).
func (a *API) Rotate(ctx context.Context, req events.WebhookRef) (events.WebhookSecret, error) {
	e, err := a.get(ctx, req.AccountID, req.ID)
	if err != nil {
		return events.WebhookSecret{}, err
	}
	sec := secret.Generate()
	now := time.Now()
	e.OldSecret, e.OldSecretUntilMs = e.Secret, store.Ms(now.Add(a.set.RotationOverlap))
	e.Secret = a.sealer.Seal(sec, nil)
	e.UpdatedMs = store.Ms(now)
	if err := a.store.UpdateEndpoint(ctx, &e); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return events.WebhookSecret{}, errNotFound
		}
		return events.WebhookSecret{}, err
	}
	return events.WebhookSecret{Secret: sec}, nil
}

// Test publishes a webhook.test event for this endpoint alone; it goes
// through the same pipeline (stream, fan-out, delivery) as every event.
func (a *API) Test(ctx context.Context, req events.WebhookRef) (events.WebhookTestReply, error) {
	e, err := a.get(ctx, req.AccountID, req.ID)
	if err != nil {
		return events.WebhookTestReply{}, err
	}
	if !e.Enabled {
		return events.WebhookTestReply{}, errDisabled
	}
	n := events.Notification{
		ID: events.NewNotificationID(), AccountID: req.AccountID, Type: events.TypeWebhookTest,
		At: time.Now(), Endpoint: e.ID,
		Data: []byte(`{"webhookId":` + strconv.Quote(e.ID) + `,"message":"This is a test event"}`),
	}
	if err := events.PublishNotification(ctx, a.js, a.names, n); err != nil {
		return events.WebhookTestReply{}, fmt.Errorf("%w: %w", apperr.ErrUnavailable, err)
	}
	return events.WebhookTestReply{EventID: n.ID}, nil
}

// Deliveries returns a page of an endpoint's log, newest first.
func (a *API) Deliveries(ctx context.Context, req events.WebhookDeliveriesRequest) (events.WebhookDeliveries, error) {
	e, err := a.get(ctx, req.AccountID, req.ID)
	if err != nil {
		return events.WebhookDeliveries{}, err
	}
	limit := req.Limit
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 1 {
		return events.WebhookDeliveries{}, errInvalidLimit
	}
	limit = min(limit, MaxPageSize)
	before, err := DecodeCursor(req.Cursor)
	if err != nil {
		return events.WebhookDeliveries{}, err
	}
	rows, err := a.store.Attempts(ctx, e.ID, before, limit+1)
	if err != nil {
		return events.WebhookDeliveries{}, err
	}
	out := events.WebhookDeliveries{Deliveries: make([]events.WebhookAttempt, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			c := EncodeCursor(rows[i-1].ID)
			out.NextCursor = &c
			break
		}
		status := "failed"
		if r.Delivered {
			status = "delivered"
		}
		out.Deliveries = append(out.Deliveries, events.WebhookAttempt{
			ID: "att_" + strconv.FormatInt(r.ID, 10), EventID: r.WebhookID, Type: r.Type, Events: r.Events,
			Attempt: r.Attempt, Status: status, ResponseStatus: r.ResponseStatus, DurationMs: r.DurationMs,
			Error: r.Error, At: timestamp.Format(time.UnixMilli(r.AtMs)),
		})
	}
	return out, nil
}

// EncodeCursor makes the opaque cursor "continue below log row id".
func EncodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("d1:" + strconv.FormatInt(id, 10)))
}

// DecodeCursor reads a cursor; "" is the first page (0).
func DecodeCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), "d1:") {
		return 0, errInvalidCursor
	}
	id, err := strconv.ParseInt(string(b[3:]), 10, 64)
	if err != nil || id < 1 {
		return 0, errInvalidCursor
	}
	return id, nil
}
