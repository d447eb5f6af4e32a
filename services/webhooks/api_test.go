package webhooks_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/webhooks/internal/store"
)

func wantErr(t *testing.T, err error, status int, code string) {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok || e.Status != status || e.Code != code {
		t.Fatalf("got %v, want %d %s", err, status, code)
	}
}

// Bad input gets the contract's errors; another account's endpoint is
// answered exactly like an unknown one; the per-account limit holds.
func TestEndpointValidationAndScoping(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		cfg := testConfig()
		cfg.AllowPrivate = false
		cfg.MaxEndpoints = 3
		h := start(t, b, cfg)
		create := func(req events.WebhookCreateRequest) (events.Webhook, error) {
			return call[events.WebhookCreateRequest, events.Webhook](h, b.Names.WebhooksCreate(), req)
		}
		for _, u := range []string{"http://example.com/", "https://127.0.0.1/", "https://localhost/x",
			"https://169.254.169.254/", "https://[::1]/", "https://10.0.0.8/", "https://2130706433/", "nope"} {
			_, err := create(events.WebhookCreateRequest{AccountID: 1, URL: u})
			wantErr(t, err, 400, "invalid_url")
		}
		_, err := create(events.WebhookCreateRequest{AccountID: 1, URL: "https://hooks.example.invalid/", Events: []string{"message.sent", "message.exploded"}})
		wantErr(t, err, 400, "invalid_events")
		wh, err := create(events.WebhookCreateRequest{AccountID: 1, URL: "https://hooks.example.invalid/a",
			Events: []string{"message.sent", "message.sent", "quota.warning"}, Description: "shop"})
		if err != nil {
			t.Fatal(err)
		}
		if len(wh.Events) != 2 || wh.Description != "shop" || wh.CreatedAt == "" {
			t.Fatalf("created %+v", wh)
		}
		for i := 0; i < 2; i++ {
			if _, err := create(events.WebhookCreateRequest{AccountID: 1, URL: "https://hooks.example.invalid/more"}); err != nil {
				t.Fatal(err)
			}
		}
		_, err = create(events.WebhookCreateRequest{AccountID: 1, URL: "https://hooks.example.invalid/fourth"})
		wantErr(t, err, 409, "too_many_webhooks")

		// Account 2 cannot see, change, test, rotate, page or delete account 1's endpoint.
		foreign := events.WebhookRef{AccountID: 2, ID: wh.ID}
		_, err = call[events.WebhookRef, events.Webhook](h, b.Names.WebhooksGet(), foreign)
		wantErr(t, err, 404, "webhook_not_found")
		_, err = call[events.WebhookRef, events.WebhookSecret](h, b.Names.WebhooksRotate(), foreign)
		wantErr(t, err, 404, "webhook_not_found")
		_, err = call[events.WebhookRef, events.WebhookTestReply](h, b.Names.WebhooksTest(), foreign)
		wantErr(t, err, 404, "webhook_not_found")
		_, err = call[events.WebhookRef, events.WebhookDeleted](h, b.Names.WebhooksDelete(), foreign)
		wantErr(t, err, 404, "webhook_not_found")
		_, err = call[events.WebhookDeliveriesRequest, events.WebhookDeliveries](h, b.Names.WebhooksDeliveries(),
			events.WebhookDeliveriesRequest{AccountID: 2, ID: wh.ID})
		wantErr(t, err, 404, "webhook_not_found")
		url := "https://hooks.example.invalid/changed"
		_, err = call[events.WebhookUpdateRequest, events.Webhook](h, b.Names.WebhooksUpdate(),
			events.WebhookUpdateRequest{AccountID: 2, ID: wh.ID, URL: &url})
		wantErr(t, err, 404, "webhook_not_found")
		_, err = call[events.WebhookRef, events.Webhook](h, b.Names.WebhooksGet(), events.WebhookRef{AccountID: 1, ID: "wh_../../etc"})
		wantErr(t, err, 404, "webhook_not_found")
		if list := mustCall[events.WebhookListRequest, events.WebhookList](t, h, b.Names.WebhooksList(), events.WebhookListRequest{AccountID: 2}); len(list.Webhooks) != 0 {
			t.Fatalf("account 2 lists %+v", list)
		}

		// PATCH validates like create and changes only what is given.
		bad := "https://192.168.0.1/"
		_, err = call[events.WebhookUpdateRequest, events.Webhook](h, b.Names.WebhooksUpdate(),
			events.WebhookUpdateRequest{AccountID: 1, ID: wh.ID, URL: &bad})
		wantErr(t, err, 400, "invalid_url")
		batch := true
		got := mustCall[events.WebhookUpdateRequest, events.Webhook](t, h, b.Names.WebhooksUpdate(),
			events.WebhookUpdateRequest{AccountID: 1, ID: wh.ID, URL: &url, Batch: &batch})
		if got.URL != url || !got.Batch || got.Description != "shop" || len(got.Events) != 2 || got.Secret != "" {
			t.Fatalf("patched %+v", got)
		}
		_, err = call[events.WebhookDeliveriesRequest, events.WebhookDeliveries](h, b.Names.WebhooksDeliveries(),
			events.WebhookDeliveriesRequest{AccountID: 1, ID: wh.ID, Limit: -1})
		wantErr(t, err, 400, "invalid_limit")
		page := mustCall[events.WebhookDeliveriesRequest, events.WebhookDeliveries](t, h, b.Names.WebhooksDeliveries(),
			events.WebhookDeliveriesRequest{AccountID: 1, ID: wh.ID})
		raw, _ := json.Marshal(page)
		if string(raw) != `{"deliveries":[],"nextCursor":null}` {
			t.Fatalf("empty log %s", raw)
		}
		mustCall[events.WebhookRef, events.WebhookDeleted](t, h, b.Names.WebhooksDelete(), events.WebhookRef{AccountID: 1, ID: wh.ID})
		_, err = call[events.WebhookRef, events.Webhook](h, b.Names.WebhooksGet(), events.WebhookRef{AccountID: 1, ID: wh.ID})
		wantErr(t, err, 404, "webhook_not_found")
	})
}

// The same event stored twice (a redelivered stream message) is one row.
func TestEnqueueIsIdempotent(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h := start(t, b, testConfig())
		row := store.Delivery{EndpointID: "wh_x", EventID: "evt_1", Type: "message.sent", EventMs: 1, Payload: "{}", NextAttemptMs: time.Now().Add(time.Hour).UnixMilli()}
		for i := 0; i < 3; i++ {
			if err := h.store.Enqueue(context.Background(), []store.Delivery{row, row}); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := h.store.Pending(context.Background(), "wh_x"); err != nil || n != 1 {
			t.Fatalf("%d rows, %v", n, err)
		}
	})
}

// DNS rebinding: an endpoint whose address is private by the time of
// delivery (stored here directly, as a name that resolved publicly at
// creation would be) is never connected to; the attempt is logged as
// blocked and retried.
func TestDeliveryRefusedAtConnectTime(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		cfg := testConfig()
		cfg.AllowPrivate = false
		h := start(t, b, cfg)
		rc := newReceiver(t, nil)
		wh := h.create(t, 1, "https://hooks.example.invalid/x", false)
		e, err := h.store.GetEndpoint(context.Background(), 1, wh.ID)
		if err != nil {
			t.Fatal(err)
		}
		e.URL = rc.srv.URL // now "resolves" to 127.0.0.1
		if err := h.store.UpdateEndpoint(context.Background(), &e); err != nil {
			t.Fatal(err)
		}
		h.notify(t, 1, events.TypeMessageSent, data(1))
		testkit.Eventually(t, 10*time.Second, "blocked attempts", func() bool {
			return h.metric(t, "apitosms_webhooks_deliveries_total", map[string]string{"outcome": "blocked"}) >= 2
		})
		if rc.count() != 0 {
			t.Fatalf("the private receiver was reached %d times", rc.count())
		}
		log := mustCall[events.WebhookDeliveriesRequest, events.WebhookDeliveries](t, h, b.Names.WebhooksDeliveries(),
			events.WebhookDeliveriesRequest{AccountID: 1, ID: wh.ID})
		d := log.Deliveries[len(log.Deliveries)-1]
		if d.Status != "failed" || d.ResponseStatus != nil || d.Error == nil || *d.Error != "destination address is not public" {
			t.Fatalf("log %+v", d)
		}
		if n, _ := h.store.Pending(context.Background(), wh.ID); n != 1 {
			t.Fatalf("%d pending, want the event kept for retry", n)
		}
	})
}
