package httpapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/services/ingress/internal/batch"
	"github.com/apitosms/apitosms/services/ingress/internal/idempotency"
	"github.com/apitosms/apitosms/services/ingress/internal/publish"
)

// errMayBeQueued marks a failure after publishing began: a chunk's
// acknowledgement may have been lost with its message stored.
var errMayBeQueued = errors.New("publish outcome unknown")

var errNoSubscription = apperr.New(http.StatusPaymentRequired, "subscription_required", "No active subscription")

func errLimitExceeded(limit, used int64) *apperr.Error {
	return apperr.New(http.StatusPaymentRequired, "limit_exceeded", "SMS limit exceeded for this month").
		With("limit", limit).With("used", used)
}

// queueItem is one queued SMS in the response.
type queueItem struct {
	Index int    `json:"index"`
	Hash  string `json:"hash"`
	Phone string `json:"phone"`
}

type queueResponse struct {
	OK     bool                `json:"ok"`
	Queued int                 `json:"queued"`
	Failed int                 `json:"failed"`
	Items  []queueItem         `json:"items"`
	Errors []events.IndexError `json:"errors"`
}

// queue accepts a batch (contract §2).
func (a *API) queue(c *fiber.Ctx) error {
	ctx, cancel := a.timeout(c)
	defer cancel()
	auth, err := a.authenticate(ctx, c)
	if err != nil {
		return err
	}
	if key := c.Get("Idempotency-Key"); key != "" {
		if !idempotency.ValidKey(key) {
			return idempotency.ErrInvalidKey
		}
		replay, lease, err := a.idem.Acquire(ctx, auth.AccountID, key)
		if err != nil {
			return err
		}
		if replay != nil {
			a.m.Replays.Inc()
			c.Set("Idempotent-Replayed", "true")
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
			return c.Status(replay.Status).Send(replay.Body)
		}
		status, body, err := a.accept(ctx, c, auth, lease.RequestID, false)
		switch {
		case errors.Is(err, errMayBeQueued):
			// Some of it may be stored: a retry must reuse the request id.
			if rerr := a.idem.Abandon(context.WithoutCancel(ctx), lease); rerr != nil {
				a.log.Warn("idempotency abandon failed", "err", rerr)
			}
			return err
		case err != nil:
			// Nothing was queued: forget the key so a retry is processed afresh.
			if rerr := a.idem.Release(context.WithoutCancel(ctx), lease); rerr != nil {
				a.log.Warn("idempotency release failed", "err", rerr)
			}
			return err
		}
		if err := a.idem.Complete(context.WithoutCancel(ctx), lease, status, body); err != nil {
			// The messages are queued; a retry after the lease expires
			// re-publishes under the same ids, which the stream deduplicates.
			a.log.Warn("idempotency complete failed", "err", err)
		}
		return a.sendJSON(c, status, body)
	}
	status, body, err := a.accept(ctx, c, auth, publish.NewRequestID(), true)
	if err != nil {
		return err
	}
	return a.sendJSON(c, status, body)
}

func (a *API) sendJSON(c *fiber.Ctx, status int, body []byte) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Status(status).Send(body)
}

// accept validates, reserves quota and publishes. It returns the response
// (200 or 422), or an error when nothing was queued.
// Items of a shareable request may share a stream message with other
// requests' (not when an Idempotency-Key needs its own publish id).
func (a *API) accept(ctx context.Context, c *fiber.Ctx, auth events.AuthReply, requestID string, shareable bool) (int, []byte, error) {
	if !auth.SubscriptionActive {
		return 0, nil, errNoSubscription
	}
	raw, err := a.body(c)
	if err != nil {
		return 0, nil, err
	}
	parsed, err := batch.Parse(raw, a.set.MaxBatch)
	if err != nil {
		return 0, nil, err
	}
	if auth.Used >= auth.MonthlyLimit {
		// Refused before billing is asked: billing's reservation counters
		// never see this request, so it is counted here.
		a.quotaRefused(len(parsed.Valid))
		return 0, nil, errLimitExceeded(auth.MonthlyLimit, auth.Used)
	}
	errs := parsed.Errors
	if len(parsed.Valid) == 0 {
		return encodeQueue(http.StatusUnprocessableEntity, &queueResponse{OK: false, Failed: len(errs), Items: []queueItem{}, Errors: errs})
	}
	res, err := a.reserver.Reserve(ctx, auth.AccountID, len(parsed.Valid))
	if err != nil {
		return 0, nil, err
	}
	if !res.SubscriptionActive {
		return 0, nil, errNoSubscription
	}
	if res.Granted == 0 {
		a.quotaRefused(len(parsed.Valid))
		return 0, nil, errLimitExceeded(res.Limit, res.Used)
	}
	accepted := parsed.Valid[:res.Granted]
	for _, v := range parsed.Valid[res.Granted:] {
		errs = append(errs, events.IndexError{Index: v.Index, Error: batch.ErrQuotaExceeded})
	}
	a.m.QuotaCut.Add(float64(len(parsed.Valid) - res.Granted))
	if len(errs) > 1 {
		slices.SortFunc(errs, func(x, y events.IndexError) int { return cmp.Compare(x.Index, y.Index) })
	}

	out := make([]events.AcceptedSMS, len(accepted))
	for i, v := range accepted {
		out[i] = events.AcceptedSMS{AccountID: auth.AccountID, Phone: v.Phone, Text: v.Text,
			SendAt: v.SendAt, ValidUntil: v.ValidUntil, High: v.High}
	}
	positions, err := a.publisher.Publish(ctx, requestID, time.Now().UTC(), out, shareable)
	if err != nil {
		a.release(auth.AccountID, res)
		a.log.Error("publish failed; quota released", "err", err, "count", len(out))
		return 0, nil, fmt.Errorf("%w: %w", apperr.ErrUnavailable, errMayBeQueued)
	}
	items := make([]queueItem, len(accepted))
	for i, v := range accepted {
		items[i] = queueItem{Index: v.Index, Hash: a.hashes.Hash(positions[i]), Phone: v.Phone}
	}
	a.m.Accepted.Add(float64(len(out)))
	if errs == nil {
		errs = []events.IndexError{}
	}
	return encodeQueue(http.StatusOK, &queueResponse{OK: true, Queued: len(items), Failed: len(errs), Items: items, Errors: errs})
}

// quotaRefused counts a 402 limit_exceeded answer refusing valid messages.
func (a *API) quotaRefused(valid int) {
	a.m.QuotaRefused.Inc()
	a.m.QuotaCut.Add(float64(valid))
}

// release gives back a reservation whose messages were not accepted.
func (a *API) release(account int64, res events.ReserveReply) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := rpc.Call[events.ReleaseRequest, events.ReleaseReply](ctx, a.nc, a.names.BillingRelease(),
		events.ReleaseRequest{AccountID: account, Count: res.Granted, Month: res.Month})
	if err != nil {
		a.log.Error("quota release failed; usage over-counted", "err", err, "count", res.Granted)
	}
}

func encodeQueue(status int, r *queueResponse) (int, []byte, error) {
	b, err := appendQueueResponse(make([]byte, 0, 64+80*len(r.Items)+48*len(r.Errors)), r)
	return status, b, err
}
