package webhooks_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// An event reaches its endpoint once, with the contract's headers and body,
// signed so that the Standard Webhooks reference library accepts it.
func TestDeliverySignedAndShaped(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h := start(t, b, testConfig())
		rc := newReceiver(t, nil)
		wh := h.create(t, 7, rc.srv.URL+"/hook", false)
		if !strings.HasPrefix(wh.Secret, "whsec_") || !wh.Enabled || len(wh.Events) != 0 {
			t.Fatalf("created %+v", wh)
		}
		other := newReceiver(t, nil)
		h.create(t, 8, other.srv.URL, false) // another account's endpoint gets nothing of account 7

		id := h.notify(t, 7, events.TypeMessageSent, data(1))
		testkit.Eventually(t, 10*time.Second, "delivery", func() bool { return rc.count() == 1 })
		r := rc.requests()[0]
		verify(t, wh.Secret, r)
		if r.id() != id || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("headers %v", r.header)
		}
		if sig := r.header.Get("webhook-signature"); !regexp.MustCompile(`^v1,[A-Za-z0-9+/]{43}=$`).MatchString(sig) {
			t.Fatalf("signature %q", sig)
		}
		got := decode[body](t, r.body)
		if got.Type != events.TypeMessageSent || string(got.Data) != data(1) ||
			!regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$`).MatchString(got.Timestamp) {
			t.Fatalf("body %s", r.body)
		}
		// message.initiated is not in the default set.
		h.notify(t, 7, events.TypeMessageInitiated, data(2))
		last := h.notify(t, 7, events.TypeMessageFailed, data(3))
		testkit.Eventually(t, 10*time.Second, "second delivery", func() bool { return rc.count() == 2 })
		if got := rc.requests()[1].id(); got != last {
			t.Fatalf("second delivery %s, want %s (message.initiated must be skipped)", got, last)
		}
		testkit.Eventually(t, 10*time.Second, "delivered metric", func() bool {
			return h.metric(t, "apitosms_webhooks_deliveries_total", map[string]string{"outcome": "delivered"}) == 2 &&
				h.metric(t, "apitosms_webhooks_backlog_events", nil) == 0
		})
		if n := h.metric(t, "apitosms_webhooks_attempt_duration_seconds", nil); n != 2 {
			t.Fatalf("latency samples %v", n)
		}
		if other.count() != 0 {
			t.Fatalf("another account's endpoint received %d requests", other.count())
		}
	})
}

// A failing endpoint is retried with growing waits until it answers 2xx; every
// retry carries the same webhook-id, and the log shows each attempt.
func TestRetriesWithBackoffUntilDelivered(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		cfg := testConfig()
		cfg.RetrySchedule = []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond}
		h := start(t, b, cfg)
		rc := newReceiver(t, func(n int, _ *http.Request) int {
			if n < 3 {
				return 503
			}
			return 204
		})
		wh := h.create(t, 1, rc.srv.URL, false)
		id := h.notify(t, 1, events.TypeMessageSent, data(1))
		testkit.Eventually(t, 20*time.Second, "4 attempts", func() bool { return rc.count() == 4 })
		reqs := rc.requests()
		for i, r := range reqs {
			if r.id() != id {
				t.Fatalf("attempt %d has webhook-id %s, want %s", i, r.id(), id)
			}
			verify(t, wh.Secret, r)
			if i > 0 {
				gap, min := r.at.Sub(reqs[i-1].at), time.Duration(float64(cfg.RetrySchedule[i-1])*0.8)
				if gap < min {
					t.Fatalf("retry %d after %v, want at least %v", i, gap, min)
				}
			}
		}
		var log events.WebhookDeliveries
		testkit.Eventually(t, 10*time.Second, "log of 4 attempts", func() bool {
			log = mustCall[events.WebhookDeliveriesRequest, events.WebhookDeliveries](t, h, b.Names.WebhooksDeliveries(),
				events.WebhookDeliveriesRequest{AccountID: 1, ID: wh.ID})
			return len(log.Deliveries) == 4
		})
		for i, d := range log.Deliveries { // newest first
			wantStatus, wantCode := "failed", 503
			if i == 0 {
				wantStatus, wantCode = "delivered", 204
			}
			if d.Status != wantStatus || d.ResponseStatus == nil || *d.ResponseStatus != wantCode ||
				d.Attempt != 4-i || d.EventID != id || d.Type != events.TypeMessageSent {
				t.Fatalf("log entry %d: %+v", i, d)
			}
		}
		if n, _ := h.store.Pending(context.Background(), wh.ID); n != 0 {
			t.Fatalf("%d events still pending", n)
		}
		// Paging: one at a time, no skips or repeats; a bad cursor is refused.
		seen := map[string]bool{}
		cursor := ""
		for {
			page := mustCall[events.WebhookDeliveriesRequest, events.WebhookDeliveries](t, h, b.Names.WebhooksDeliveries(),
				events.WebhookDeliveriesRequest{AccountID: 1, ID: wh.ID, Limit: 1, Cursor: cursor})
			for _, d := range page.Deliveries {
				if seen[d.ID] {
					t.Fatalf("%s repeated", d.ID)
				}
				seen[d.ID] = true
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		if len(seen) != 4 {
			t.Fatalf("paged through %d entries, want 4", len(seen))
		}
		for _, bad := range []string{"x", "!!", "ZDE6MA", "abc%"} {
			_, err := call[events.WebhookDeliveriesRequest, events.WebhookDeliveries](h, b.Names.WebhooksDeliveries(),
				events.WebhookDeliveriesRequest{AccountID: 1, ID: wh.ID, Cursor: bad})
			if e, ok := apperr.As(err); !ok || e.Code != "invalid_cursor" || e.Status != 400 {
				t.Fatalf("cursor %q: %v", bad, err)
			}
		}
	})
}

// 410 Gone disables the endpoint at once: nothing more is sent, events
// published while it is disabled are not queued for it, and the event that got
// the 410 is kept and delivered once the merchant enables it again.
func TestGoneDisablesEndpoint(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h := start(t, b, testConfig())
		var mu sync.Mutex
		status := http.StatusGone
		rc := newReceiver(t, func(int, *http.Request) int { mu.Lock(); defer mu.Unlock(); return status })
		wh := h.create(t, 1, rc.srv.URL, false)
		first := h.notify(t, 1, events.TypeMessageSent, data(1))
		ref := events.WebhookRef{AccountID: 1, ID: wh.ID}
		testkit.Eventually(t, 10*time.Second, "endpoint disabled", func() bool {
			got := mustCall[events.WebhookRef, events.Webhook](t, h, b.Names.WebhooksGet(), ref)
			return !got.Enabled && got.DisabledReason == "gone"
		})
		h.notify(t, 1, events.TypeMessageSent, data(2)) // while disabled: not for this endpoint
		// A marker endpoint of the same account shows the fan-out has passed it.
		marker := newReceiver(t, nil)
		h.create(t, 1, marker.srv.URL, false)
		last := h.notify(t, 1, events.TypeMessageSent, data(3))
		testkit.Eventually(t, 10*time.Second, "marker delivered", func() bool {
			for _, r := range marker.requests() {
				if r.id() == last {
					return true
				}
			}
			return false
		})
		if n, _ := h.store.Pending(context.Background(), wh.ID); n != 1 || rc.count() != 1 {
			t.Fatalf("disabled endpoint: %d pending, %d requests; want 1 and 1", n, rc.count())
		}
		if _, err := call[events.WebhookRef, events.WebhookTestReply](h, b.Names.WebhooksTest(), ref); err == nil {
			t.Fatal("test event sent to a disabled endpoint")
		}
		mu.Lock()
		status = 200
		mu.Unlock()
		on := true
		mustCall[events.WebhookUpdateRequest, events.Webhook](t, h, b.Names.WebhooksUpdate(),
			events.WebhookUpdateRequest{AccountID: 1, ID: wh.ID, Enabled: &on})
		testkit.Eventually(t, 10*time.Second, "kept event delivered after re-enabling", func() bool {
			n, _ := h.store.Pending(context.Background(), wh.ID)
			return rc.count() == 2 && n == 0
		})
		if got := rc.requests()[1].id(); got != first {
			t.Fatalf("after re-enabling got %s, want %s", got, first)
		}
		if n := h.metric(t, "apitosms_webhooks_endpoints_disabled_total", map[string]string{"reason": "gone"}); n != 1 {
			t.Fatalf("disabled metric %v", n)
		}
	})
}

// An endpoint that keeps failing for DisableAfter is disabled.
func TestFailingEndpointDisabled(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		cfg := testConfig()
		cfg.DisableAfter = 500 * time.Millisecond
		h := start(t, b, cfg)
		rc := newReceiver(t, func(int, *http.Request) int { return 500 })
		wh := h.create(t, 1, rc.srv.URL, false)
		h.notify(t, 1, events.TypeMessageSent, data(1))
		testkit.Eventually(t, 20*time.Second, "endpoint disabled", func() bool {
			got := mustCall[events.WebhookRef, events.Webhook](t, h, b.Names.WebhooksGet(), events.WebhookRef{AccountID: 1, ID: wh.ID})
			return !got.Enabled && got.DisabledReason == "failing"
		})
		if rc.count() < 2 {
			t.Fatalf("disabled after %d attempts", rc.count())
		}
	})
}

// After a rotation both secrets sign (two signatures, each verifies with the
// reference library); the test event goes through the whole pipeline.
func TestRotationSignsWithBothSecrets(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h := start(t, b, testConfig())
		rc := newReceiver(t, nil)
		wh := h.create(t, 1, rc.srv.URL, false)
		ref := events.WebhookRef{AccountID: 1, ID: wh.ID}
		rot := mustCall[events.WebhookRef, events.WebhookSecret](t, h, b.Names.WebhooksRotate(), ref)
		if rot.Secret == wh.Secret || !strings.HasPrefix(rot.Secret, "whsec_") {
			t.Fatalf("rotated secret %q", rot.Secret)
		}
		test := mustCall[events.WebhookRef, events.WebhookTestReply](t, h, b.Names.WebhooksTest(), ref)
		testkit.Eventually(t, 10*time.Second, "test event", func() bool { return rc.count() == 1 })
		r := rc.requests()[0]
		if r.id() != test.EventID || len(strings.Split(r.header.Get("webhook-signature"), " ")) != 2 {
			t.Fatalf("id %s signature %q", r.id(), r.header.Get("webhook-signature"))
		}
		verify(t, rot.Secret, r)
		verify(t, wh.Secret, r)
		if got := decode[body](t, r.body); got.Type != events.TypeWebhookTest {
			t.Fatalf("body %s", r.body)
		}
		// Listing never shows a secret.
		list := mustCall[events.WebhookListRequest, events.WebhookList](t, h, b.Names.WebhooksList(), events.WebhookListRequest{AccountID: 1})
		raw, _ := json.Marshal(list)
		if len(list.Webhooks) != 1 || strings.Contains(string(raw), "whsec_") {
			t.Fatalf("list %s", raw)
		}
	})
}

// A batch endpoint gets several events in one POST, in the contract's batch
// shape, signed; every event arrives.
func TestBatchEndpoint(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		cfg := testConfig()
		cfg.PerEndpoint = 1
		h := start(t, b, cfg)
		release := make(chan struct{})
		rc := newReceiver(t, func(n int, _ *http.Request) int {
			if n == 0 {
				<-release // hold the first POST so the rest pile up
			}
			return 200
		})
		wh := h.create(t, 1, rc.srv.URL, true)
		const total = 60
		want := map[string]bool{}
		want[h.notify(t, 1, events.TypeMessageSent, data(0))] = true
		testkit.Eventually(t, 10*time.Second, "first POST", func() bool { return rc.count() == 1 })
		for i := 1; i < total; i++ {
			want[h.notify(t, 1, events.TypeMessageSent, data(i))] = true
		}
		testkit.Eventually(t, 10*time.Second, "the rest stored", func() bool {
			n, _ := h.store.Pending(context.Background(), wh.ID)
			return n == total // the first is in flight, still pending
		})
		close(release)
		type batch struct {
			Type      string `json:"type"`
			Timestamp string `json:"timestamp"`
			Data      struct {
				Events []struct {
					ID        string          `json:"id"`
					Type      string          `json:"type"`
					Timestamp string          `json:"timestamp"`
					Data      json.RawMessage `json:"data"`
				} `json:"events"`
			} `json:"data"`
		}
		got := map[string]bool{}
		biggest := 0
		testkit.Eventually(t, 10*time.Second, "every event", func() bool {
			got = map[string]bool{}
			for _, r := range rc.requests() {
				v := decode[batch](t, r.body)
				for _, e := range v.Data.Events {
					got[e.ID] = true
				}
			}
			return len(got) == total
		})
		for _, r := range rc.requests() {
			verify(t, wh.Secret, r)
			v := decode[batch](t, r.body)
			if v.Type != "batch" || v.Timestamp == "" || !strings.HasPrefix(r.id(), "batch_") {
				t.Fatalf("batch %s id %s", r.body, r.id())
			}
			for _, e := range v.Data.Events {
				if !want[e.ID] || e.Type != events.TypeMessageSent || e.Timestamp == "" || len(e.Data) == 0 {
					t.Fatalf("event %+v", e)
				}
			}
			biggest = max(biggest, len(v.Data.Events))
		}
		if biggest < 2 {
			t.Fatalf("no POST carried more than one event (%d POSTs)", rc.count())
		}
		t.Logf("%d events in %d POSTs, largest %d", total, rc.count(), biggest)
	})
}

// A slow endpoint never has more than PerEndpoint POSTs in flight, and while
// it hangs another account's endpoint gets all its events.
func TestSlowEndpointDoesNotDelayOthers(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h, slow, release := startHanging(t, b)
		fast := newReceiver(t, nil)
		h.create(t, 1, slow.srv.URL, false)
		h.create(t, 2, fast.srv.URL, false)
		for i := 0; i < 10; i++ {
			h.notify(t, 1, events.TypeMessageSent, data(i))
		}
		testkit.Eventually(t, 10*time.Second, "slow endpoint saturated", func() bool { return slow.count() == 2 })
		for i := 0; i < 10; i++ {
			h.notify(t, 2, events.TypeMessageSent, data(i))
		}
		testkit.Eventually(t, 10*time.Second, "fast endpoint served while slow hangs", func() bool { return fast.count() == 10 })
		if slow.count() != 2 {
			t.Fatalf("slow endpoint got %d requests while its first 2 hang", slow.count())
		}
		close(release)
		testkit.Eventually(t, 20*time.Second, "slow endpoint drained", func() bool { return slow.count() == 10 })
		slow.mu.Lock()
		defer slow.mu.Unlock()
		if slow.maxIn > 2 {
			t.Fatalf("%d POSTs in flight to one endpoint, limit 2", slow.maxIn)
		}
	})
}

// A producer's batch (events.PublishNotifications) is fanned out event by
// event; publishing it again under the same batch id stores nothing new.
func TestNotificationBatchFannedOut(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h := start(t, b, testConfig())
		one, two := newReceiver(t, nil), newReceiver(t, nil)
		h.create(t, 1, one.srv.URL, false)
		h.create(t, 2, two.srv.URL, false, events.TypeQuotaWarning)
		ns := []events.Notification{
			{ID: "evt_a", AccountID: 1, Type: events.TypeMessageSent, Data: json.RawMessage(data(1))},
			{ID: "evt_b", AccountID: 2, Type: events.TypeMessageSent, Data: json.RawMessage(data(2))}, // not subscribed
			{ID: "evt_c", AccountID: 2, Type: events.TypeQuotaWarning, Data: json.RawMessage(`{"used":80,"limit":100,"month":"2026-12"}`)},
		}
		for i := 0; i < 2; i++ {
			if err := events.PublishNotifications(context.Background(), h.br.JS, b.Names, "report-1", ns); err != nil {
				t.Fatal(err)
			}
		}
		testkit.Eventually(t, 10*time.Second, "both accounts served", func() bool { return one.count() == 1 && two.count() == 1 })
		if one.requests()[0].id() != "evt_a" || two.requests()[0].id() != "evt_c" {
			t.Fatalf("got %s and %s", one.requests()[0].id(), two.requests()[0].id())
		}
		if n := h.metric(t, "apitosms_webhooks_enqueued_total", nil); n != 2 {
			t.Fatalf("enqueued %v, want 2 (the repeated batch is deduplicated by the stream)", n)
		}
	})
}

// A fresh event for an endpoint with a free slot is stored already claimed
// and POSTed by the fan-out (the hand-off), but never into the endpoint's
// last free slot: that one stays with the database path, so an event stored
// while the hand-off's POST hangs is claimed and sent beside it, and the
// endpoint's bound holds.
func TestFreshEventsHandedOffLeavingOneSlot(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h, rc, release := startHanging(t, b)
		wh := h.create(t, 1, rc.srv.URL, false)

		first := h.notify(t, 1, events.TypeMessageSent, data(1))
		testkit.Eventually(t, 10*time.Second, "first event POSTed", func() bool { return rc.count() == 1 })
		if n := h.metric(t, "apitosms_webhooks_handoff_posts_total", nil); n != 1 {
			t.Fatalf("%v POSTs handed off, want the first event's", n)
		}
		second := h.notify(t, 1, events.TypeMessageSent, data(2))
		testkit.Eventually(t, 10*time.Second, "second event claimed into the last slot", func() bool { return rc.count() == 2 })
		if n := h.metric(t, "apitosms_webhooks_handoff_posts_total", nil); n != 1 {
			t.Fatalf("%v POSTs handed off; the second event took the endpoint's last slot", n)
		}
		third := h.notify(t, 1, events.TypeMessageSent, data(3))
		close(release)
		testkit.Eventually(t, 10*time.Second, "all delivered", func() bool {
			n, err := h.store.Pending(context.Background(), wh.ID)
			return err == nil && n == 0 && rc.count() >= 3
		})
		got := map[string]int{}
		for _, r := range rc.requests() {
			verify(t, wh.Secret, r)
			got[r.id()]++
		}
		for _, id := range []string{first, second, third} {
			if got[id] != 1 {
				t.Fatalf("event %s POSTed %d times (%v)", id, got[id], got)
			}
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.maxIn > 2 {
			t.Fatalf("%d POSTs in flight to one endpoint, limit 2", rc.maxIn)
		}
	})
}

// startHanging starts the service with 2 POSTs per endpoint and a 20 s
// timeout, and a receiver that holds every request until release is closed.
func startHanging(t *testing.T, b testkit.Backend) (*harness, *receiver, chan struct{}) {
	t.Helper()
	cfg := testConfig()
	cfg.PerEndpoint = 2
	cfg.Timeout = 20 * time.Second
	release := make(chan struct{})
	return start(t, b, cfg), newReceiver(t, func(int, *http.Request) int { <-release; return 200 }), release
}

// With no poll to fall back on, events beyond an endpoint's slots are sent
// as its POSTs end: the dispatcher is woken by the end of a POST whose
// endpoint still had due rows waiting for a slot.
func TestFinishedPostsWakeForWaitingRows(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		cfg := testConfig()
		cfg.Poll = time.Hour
		h := start(t, b, cfg)
		rc := newReceiver(t, func(int, *http.Request) int { time.Sleep(20 * time.Millisecond); return 200 })
		wh := h.create(t, 1, rc.srv.URL, false)
		ns := make([]events.Notification, 24) // 6 times the endpoint's 4 slots
		for i := range ns {
			ns[i] = events.Notification{ID: events.NewNotificationID(), AccountID: 1, Type: events.TypeMessageSent, At: time.Now(), Data: []byte(data(i))}
		}
		if err := events.PublishNotifications(context.Background(), h.br.JS, b.Names, events.NewNotificationID(), ns); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 10*time.Second, "every event delivered without a poll", func() bool {
			n, err := h.store.Pending(context.Background(), wh.ID)
			return err == nil && n == 0 && rc.count() >= len(ns)
		})
	})
}
