package webhooks_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/webhooks/internal/store"
)

// attempts is an endpoint's deliveries log, oldest first.
func (h *harness) attempts(t testing.TB, endpoint string) []store.Attempt {
	t.Helper()
	got, err := h.store.Attempts(context.Background(), endpoint, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
		got[i], got[j] = got[j], got[i]
	}
	return got
}

// An event whose POST from memory gets a 2xx within the wait is never
// stored as undelivered: the fan-out's commit writes its log row only, so
// once the log row is there nothing waits, and the receiver got it once.
func TestDeliveredAtOnceNeverStored(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h := start(t, b, testConfig())
		rc := newReceiver(t, nil)
		wh := h.create(t, 1, rc.srv.URL, false)
		batch := h.create(t, 1, newReceiver(t, nil).srv.URL, true)
		id := h.notify(t, 1, events.TypeMessageSent, data(1))
		testkit.Eventually(t, 10*time.Second, "log rows of both endpoints", func() bool {
			return len(h.attempts(t, wh.ID)) == 1 && len(h.attempts(t, batch.ID)) == 1
		})
		for _, ep := range []string{wh.ID, batch.ID} {
			a := h.attempts(t, ep)[0]
			if !a.Delivered || a.Attempt != 1 || a.Events != 1 || a.ResponseStatus == nil || *a.ResponseStatus != 200 {
				t.Fatalf("log row %+v", a)
			}
			if n, err := h.store.Pending(context.Background(), ep); err != nil || n != 0 {
				t.Fatalf("%d undelivered rows of %s (%v)", n, ep, err)
			}
		}
		if got := h.attempts(t, wh.ID)[0].WebhookID; got != id || rc.count() != 1 || rc.requests()[0].id() != id {
			t.Fatalf("log %s, %d requests", got, rc.count())
		}
		verify(t, wh.Secret, rc.requests()[0])
		if n := h.metric(t, "apitosms_webhooks_unstored_events_total", nil); n != 2 {
			t.Fatalf("%v events delivered unstored, want 2", n)
		}
		if n := h.metric(t, "apitosms_webhooks_events_delivered_total", nil); n != 2 {
			t.Fatalf("%v events delivered, want 2", n)
		}
	})
}

// An event whose POST from memory fails is stored as a failed first attempt
// (logged, the endpoint failing) and retried with the same webhook-id.
func TestFailedAtOnceStoredAndRetried(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		cfg := testConfig()
		cfg.RetrySchedule = []time.Duration{time.Second}
		h := start(t, b, cfg)
		rc := newReceiver(t, func(n int, _ *http.Request) int {
			if n == 0 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		wh := h.create(t, 1, rc.srv.URL, false)
		id := h.notify(t, 1, events.TypeMessageSent, data(1))
		testkit.Eventually(t, 10*time.Second, "failed attempt logged", func() bool { return len(h.attempts(t, wh.ID)) == 1 })
		if n, err := h.store.Pending(context.Background(), wh.ID); err != nil || n != 1 || rc.count() != 1 {
			t.Fatalf("%d rows wait after the failed POST (%v), %d requests", n, err, rc.count())
		}
		testkit.Eventually(t, 5*time.Second, "endpoint failing", func() bool {
			ep, err := h.store.GetEndpoint(context.Background(), 1, wh.ID)
			return err == nil && ep.FailingSinceMs != 0
		})
		testkit.Eventually(t, 10*time.Second, "retried and delivered", func() bool {
			n, err := h.store.Pending(context.Background(), wh.ID)
			return err == nil && n == 0 && len(h.attempts(t, wh.ID)) == 2
		})
		log := h.attempts(t, wh.ID)
		if log[0].Delivered || log[0].Attempt != 1 || !log[1].Delivered || log[1].Attempt != 2 ||
			log[1].WebhookID != id || rc.count() != 2 || rc.requests()[1].id() != id {
			t.Fatalf("log %+v, %d requests", log, rc.count())
		}
		if gap := rc.requests()[1].at.Sub(rc.requests()[0].at); gap < 700*time.Millisecond {
			t.Fatalf("retried after %v, the schedule says 1 s ±20%%", gap)
		}
		if n := h.metric(t, "apitosms_webhooks_unstored_events_total", nil); n != 0 {
			t.Fatalf("%v events counted unstored", n)
		}
	})
}

// A receiver slower than the wait does not hold up another endpoint's
// delivery of the same fan-out batch (its log row is committed while the
// slow POST hangs); the slow event is stored claimed, arrives once, and is
// recorded when its POST ends; the slow endpoint is then not waited on.
func TestSlowEndpointNotWaitedOn(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		cfg := testConfig()
		cfg.InlineWait = 100 * time.Millisecond
		cfg.Timeout = 30 * time.Second // the slow POST hangs far beyond the checks below
		h := start(t, b, cfg)
		release := make(chan struct{})
		slow := newReceiver(t, func(int, *http.Request) int { <-release; return 200 })
		fast := newReceiver(t, nil)
		sw := h.create(t, 1, slow.srv.URL, false)
		fw := h.create(t, 2, fast.srv.URL, false)
		publish := func(i int) {
			t.Helper()
			ns := []events.Notification{
				{ID: events.NewNotificationID(), AccountID: 1, Type: events.TypeMessageSent, At: time.Now(), Data: json.RawMessage(data(i))},
				{ID: events.NewNotificationID(), AccountID: 2, Type: events.TypeMessageSent, At: time.Now(), Data: json.RawMessage(data(i))},
			}
			if err := events.PublishNotifications(context.Background(), h.br.JS, b.Names, events.NewNotificationID(), ns); err != nil {
				t.Fatal(err)
			}
		}
		publish(1)
		testkit.Eventually(t, 5*time.Second, "fast event delivered and logged while the slow POST hangs", func() bool {
			return len(h.attempts(t, fw.ID)) == 1 && slow.count() == 1
		})
		testkit.Eventually(t, 10*time.Second, "slow event stored claimed", func() bool {
			n, err := h.store.Pending(context.Background(), sw.ID)
			return err == nil && n == 1
		})
		// The slow endpoint is now sent to after the commit: a second
		// batch is not waited on (the fast event is logged at once, well
		// under another wait), and its event waits for the slow one's slot.
		began := time.Now()
		publish(2)
		testkit.Eventually(t, 5*time.Second, "second fast event", func() bool { return len(h.attempts(t, fw.ID)) == 2 })
		t.Logf("second fast event logged %v after publishing", time.Since(began))
		close(release)
		testkit.Eventually(t, 20*time.Second, "slow events delivered and recorded", func() bool {
			n, err := h.store.Pending(context.Background(), sw.ID)
			return err == nil && n == 0 && len(h.attempts(t, sw.ID)) == 2
		})
		got := map[string]int{}
		for _, r := range slow.requests() {
			verify(t, sw.Secret, r)
			got[r.id()]++
		}
		for id, n := range got {
			if n != 1 {
				t.Fatalf("slow event %s POSTed %d times", id, n)
			}
		}
		if len(got) != 2 || fast.count() != 2 {
			t.Fatalf("slow got %v, fast %d requests", got, fast.count())
		}
		if n := h.metric(t, "apitosms_webhooks_unstored_events_total", nil); n != 2 {
			t.Fatalf("%v events delivered unstored, want the fast endpoint's 2", n)
		}
	})
}
