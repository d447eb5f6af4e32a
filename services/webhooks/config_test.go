package webhooks_test

import (
	"context"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/config"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/webhooks"
	"github.com/apitosms/apitosms/services/webhooks/internal/store"
)

func TestLoadConfig(t *testing.T) {
	env := map[string]string{
		"APITOSMS_WEBHOOK_ALLOW_PRIVATE":  "true",
		"APITOSMS_WEBHOOK_RETRY_SCHEDULE": "1s, 2m,3h",
		"APITOSMS_WEBHOOK_TIMEOUT":        "4s",
	}
	r := config.NewReader(func(k string) string { return env[k] })
	cfg := webhooks.LoadConfig(r, config.Common{})
	if err := r.Err(); err != nil || !cfg.AllowPrivate || cfg.Timeout != 4*time.Second ||
		len(cfg.RetrySchedule) != 3 || cfg.RetrySchedule[1] != 2*time.Minute || cfg.MaxEndpoints != 20 || cfg.BatchSize != 500 {
		t.Fatalf("%+v %v", cfg, err)
	}
	d := webhooks.DefaultConfig()
	var total time.Duration
	for _, w := range d.RetrySchedule {
		total += w
	}
	if d.RetrySchedule[0] > 25*time.Second || total < 24*time.Hour || d.DisableAfter != 72*time.Hour || d.AllowPrivate {
		t.Fatalf("defaults: first retry %v, schedule spans %v", d.RetrySchedule[0], total)
	}
	env["APITOSMS_WEBHOOK_RETRY_SCHEDULE"] = "1s,soon"
	r = config.NewReader(func(k string) string { return env[k] })
	webhooks.LoadConfig(r, config.Common{})
	if r.Err() == nil {
		t.Fatal("malformed schedule accepted")
	}
}

// The sweeper removes log rows past retention, and old waiting events of
// disabled endpoints only.
func TestSweep(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h := start(t, b, testConfig())
		ctx := context.Background()
		rc := newReceiver(t, nil)
		on := h.create(t, 1, rc.srv.URL, false)
		now := time.Now()
		old, recent := store.Ms(now.Add(-8*24*time.Hour)), store.Ms(now)
		far := store.Ms(now.Add(time.Hour)) // not due: the dispatcher leaves them alone
		if err := h.store.Enqueue(ctx, []store.Delivery{
			{EndpointID: on.ID, EventID: "evt_old", Type: "message.sent", EventMs: old, Payload: "{}", NextAttemptMs: far},
			{EndpointID: "wh_disabled_gone", EventID: "evt_old", Type: "message.sent", EventMs: old, Payload: "{}", NextAttemptMs: far},
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.store.Record(ctx, []store.Outcome{
			{Attempt: &store.Attempt{EndpointID: on.ID, WebhookID: "evt_x", Type: "message.sent", Events: 1, Attempt: 1, AtMs: old}, IDs: []int64{0}, NextAttemptMs: far},
			{Attempt: &store.Attempt{EndpointID: on.ID, WebhookID: "evt_y", Type: "message.sent", Events: 1, Attempt: 1, AtMs: recent}, IDs: []int64{0}, NextAttemptMs: far},
		}, time.Hour*1000); err != nil {
			t.Fatal(err)
		}
		if _, err := h.store.Sweep(ctx, store.Ms(now.Add(-7*24*time.Hour))); err != nil {
			t.Fatal(err)
		}
		log, err := h.store.Attempts(ctx, on.ID, 0, 10)
		if err != nil || len(log) != 1 || log[0].WebhookID != "evt_y" {
			t.Fatalf("log after sweep: %+v %v", log, err)
		}
		if n, _ := h.store.Pending(ctx, on.ID); n != 1 {
			t.Fatalf("an enabled endpoint's old event was swept (%d left)", n)
		}
		if n, _ := h.store.Pending(ctx, "wh_disabled_gone"); n != 0 {
			t.Fatalf("an unknown endpoint's old event was kept")
		}
	})
}
