package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
)

// The webhooks endpoints (contract §10) are answered by the webhooks service;
// ingress authenticates the token, counts the request in the account's read
// window and forwards it with the account id over request/reply.

// maxWebhookBody bounds a webhooks request body.
const maxWebhookBody = 64 << 10

func (a *API) webhookRoutes(r fiber.Router) {
	r.Post("/api/:token/webhooks", a.webhookCreate)
	r.Get("/api/:token/webhooks", a.webhookList)
	r.Get("/api/:token/webhooks/:id", a.webhookGet)
	r.Patch("/api/:token/webhooks/:id", a.webhookUpdate)
	r.Delete("/api/:token/webhooks/:id", a.webhookDelete)
	r.Post("/api/:token/webhooks/:id/rotate-secret", a.webhookRotate)
	r.Post("/api/:token/webhooks/:id/test", a.webhookTest)
	r.Get("/api/:token/webhooks/:id/deliveries", a.webhookDeliveries)
}

func invalidBody(sentence string) *apperr.Error {
	return apperr.New(http.StatusBadRequest, "invalid_body", sentence)
}

// webhookFields is a create or PATCH body: every field optional here, typed
// one by one so a wrong type gets a precise error.
type webhookFields struct {
	URL         *string
	Events      *[]string
	Batch       *bool
	Enabled     *bool
	Description *string
}

func (a *API) webhookBody(c *fiber.Ctx) (webhookFields, error) {
	var f webhookFields
	raw, err := a.body(c)
	if err != nil {
		return f, err
	}
	if len(raw) > maxWebhookBody {
		return f, apperr.ErrBodyTooLarge
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return f, apperr.ErrInvalidJSON
	}
	field := func(name string, dst any, bad *apperr.Error) error {
		v, ok := obj[name]
		if !ok || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return bad
		}
		return nil
	}
	var url string
	var list []string
	var batch, enabled bool
	var desc string
	for _, x := range []struct {
		name string
		dst  any
		bad  *apperr.Error
		set  func()
	}{
		{"url", &url, apperr.New(http.StatusBadRequest, "invalid_url", "Invalid webhook URL: url must be a string"), func() { f.URL = &url }},
		{"events", &list, apperr.New(http.StatusBadRequest, "invalid_events", "events must be an array of event types"), func() { f.Events = &list }},
		{"batch", &batch, invalidBody("batch must be true or false"), func() { f.Batch = &batch }},
		{"enabled", &enabled, invalidBody("enabled must be true or false"), func() { f.Enabled = &enabled }},
		{"description", &desc, invalidBody("description must be a string"), func() { f.Description = &desc }},
	} {
		if err := field(x.name, x.dst, x.bad); err != nil {
			return f, err
		}
		if v, ok := obj[x.name]; ok && string(v) != "null" {
			x.set()
		}
	}
	return f, nil
}

// webhookCall authenticates, then forwards one request; it answers status
// with the reply as JSON (or no body for 204).
func webhookCall[Req, Resp any](a *API, c *fiber.Ctx, status int, subject string, build func(account int64) (Req, error)) error {
	ctx, cancel := a.timeout(c)
	defer cancel()
	auth, err := a.authenticateRead(ctx, c)
	if err != nil {
		return err
	}
	req, err := build(auth.AccountID)
	if err != nil {
		return err
	}
	resp, err := rpc.Call[Req, Resp](ctx, a.nc, subject, req)
	if err != nil {
		return err
	}
	if status == http.StatusNoContent {
		return c.SendStatus(status)
	}
	return c.Status(status).JSON(resp)
}

func (a *API) webhookCreate(c *fiber.Ctx) error {
	return webhookCall[events.WebhookCreateRequest, events.Webhook](a, c, http.StatusCreated, a.names.WebhooksCreate(),
		func(account int64) (events.WebhookCreateRequest, error) {
			f, err := a.webhookBody(c)
			req := events.WebhookCreateRequest{AccountID: account}
			if err != nil {
				return req, err
			}
			if f.URL == nil {
				return req, apperr.New(http.StatusBadRequest, "invalid_url", "Invalid webhook URL: url is required")
			}
			req.URL = *f.URL
			if f.Events != nil {
				req.Events = *f.Events
			}
			if f.Batch != nil {
				req.Batch = *f.Batch
			}
			if f.Description != nil {
				req.Description = *f.Description
			}
			return req, nil
		})
}

func (a *API) webhookList(c *fiber.Ctx) error {
	return webhookCall[events.WebhookListRequest, events.WebhookList](a, c, http.StatusOK, a.names.WebhooksList(),
		func(account int64) (events.WebhookListRequest, error) {
			return events.WebhookListRequest{AccountID: account}, nil
		})
}

// ref copies the endpoint id out of fiber's buffers.
func ref(c *fiber.Ctx, account int64) events.WebhookRef {
	return events.WebhookRef{AccountID: account, ID: string([]byte(c.Params("id")))}
}

func (a *API) webhookGet(c *fiber.Ctx) error {
	return webhookCall[events.WebhookRef, events.Webhook](a, c, http.StatusOK, a.names.WebhooksGet(),
		func(account int64) (events.WebhookRef, error) { return ref(c, account), nil })
}

func (a *API) webhookUpdate(c *fiber.Ctx) error {
	return webhookCall[events.WebhookUpdateRequest, events.Webhook](a, c, http.StatusOK, a.names.WebhooksUpdate(),
		func(account int64) (events.WebhookUpdateRequest, error) {
			r := ref(c, account)
			f, err := a.webhookBody(c)
			return events.WebhookUpdateRequest{AccountID: account, ID: r.ID, URL: f.URL, Events: f.Events,
				Batch: f.Batch, Enabled: f.Enabled, Description: f.Description}, err
		})
}

func (a *API) webhookDelete(c *fiber.Ctx) error {
	return webhookCall[events.WebhookRef, events.WebhookDeleted](a, c, http.StatusNoContent, a.names.WebhooksDelete(),
		func(account int64) (events.WebhookRef, error) { return ref(c, account), nil })
}

func (a *API) webhookRotate(c *fiber.Ctx) error {
	return webhookCall[events.WebhookRef, events.WebhookSecret](a, c, http.StatusOK, a.names.WebhooksRotate(),
		func(account int64) (events.WebhookRef, error) { return ref(c, account), nil })
}

func (a *API) webhookTest(c *fiber.Ctx) error {
	return webhookCall[events.WebhookRef, events.WebhookTestReply](a, c, http.StatusAccepted, a.names.WebhooksTest(),
		func(account int64) (events.WebhookRef, error) { return ref(c, account), nil })
}

func (a *API) webhookDeliveries(c *fiber.Ctx) error {
	return webhookCall[events.WebhookDeliveriesRequest, events.WebhookDeliveries](a, c, http.StatusOK, a.names.WebhooksDeliveries(),
		func(account int64) (events.WebhookDeliveriesRequest, error) {
			r := ref(c, account)
			limit, err := parseLimit(c)
			return events.WebhookDeliveriesRequest{AccountID: account, ID: r.ID, Limit: limit,
				Cursor: string([]byte(c.Query("cursor")))}, err
		})
}
