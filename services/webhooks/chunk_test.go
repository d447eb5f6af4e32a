package webhooks_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// A producer's batch of events for a "batch": true endpoint is stored as a
// few chunk rows, not a row per event, and delivered in POSTs of at most
// the batch size: every event exactly once here, signed, each POST's
// webhook-id "batch_" + the digest of its event ids in order, and the
// deliveries log counting the events. Storing the same events again (a
// producer re-publishing after the stream's duplicate window) adds nothing.
func TestBatchEndpointChunks(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		cfg := testConfig()
		cfg.BatchSize = 300
		h := start(t, b, cfg)
		release := make(chan struct{})
		rc := newReceiver(t, func(n int, _ *http.Request) int {
			<-release
			return 200
		})
		wh := h.create(t, 1, rc.srv.URL, true)
		const total = 1700 // two producer messages: 1000 and 700 events
		ns := make([]events.Notification, total)
		want := map[string]bool{}
		for i := range ns {
			ns[i] = events.Notification{ID: fmt.Sprintf("evt_chunk_%04d", i), AccountID: 1, Type: events.TypeMessageSent,
				At: time.Now(), Data: json.RawMessage(data(i))}
			want[ns[i].ID] = true
		}
		ctx := context.Background()
		if err := events.PublishNotifications(ctx, h.br.JS, b.Names, "chunks-1", ns); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 20*time.Second, "every event stored", func() bool {
			n, _ := h.store.Pending(ctx, wh.ID)
			return n == total
		})
		if err := events.PublishNotifications(ctx, h.br.JS, b.Names, "chunks-again", ns); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 20*time.Second, "the repeat fanned out", func() bool {
			return h.metric(t, "apitosms_webhooks_enqueued_total", nil) == 2*total
		})
		if n, _ := h.store.Pending(ctx, wh.ID); n != total {
			t.Fatalf("%d events pending after the repeat, want %d", n, total)
		}
		close(release)
		got := map[string]int{}
		testkit.Eventually(t, 20*time.Second, "every event delivered", func() bool {
			got = map[string]int{}
			for _, r := range rc.requests() {
				var v struct {
					Data struct {
						Events []struct {
							ID string `json:"id"`
						} `json:"events"`
					} `json:"data"`
				}
				if err := json.Unmarshal(r.body, &v); err != nil {
					t.Fatalf("body %s: %v", r.body, err)
				}
				for _, e := range v.Data.Events {
					got[e.ID]++
				}
			}
			return len(got) == total
		})
		posts := 0
		for _, r := range rc.requests() {
			verify(t, wh.Secret, r)
			var v struct {
				Type string `json:"type"`
				Data struct {
					Events []struct {
						ID   string          `json:"id"`
						Type string          `json:"type"`
						Data json.RawMessage `json:"data"`
					} `json:"events"`
				} `json:"data"`
			}
			if err := json.Unmarshal(r.body, &v); err != nil || v.Type != "batch" {
				t.Fatalf("body %s: %v", r.body, err)
			}
			if len(v.Data.Events) > cfg.BatchSize {
				t.Fatalf("a POST carried %d events, batch size %d", len(v.Data.Events), cfg.BatchSize)
			}
			ids := make([]string, len(v.Data.Events))
			for i, e := range v.Data.Events {
				ids[i] = e.ID
				if !want[e.ID] || e.Type != events.TypeMessageSent || len(e.Data) == 0 {
					t.Fatalf("event %+v", e)
				}
			}
			sum := sha256.Sum256([]byte(strings.Join(ids, ",")))
			if r.id() != "batch_"+hex.EncodeToString(sum[:])[:32] {
				t.Fatalf("webhook-id %s does not digest its %d event ids", r.id(), len(ids))
			}
			posts++
		}
		for id, n := range got {
			if n != 1 {
				t.Fatalf("event %s delivered %d times", id, n)
			}
		}
		if posts > 8 {
			t.Fatalf("%d events in %d POSTs of at most %d", total, posts, cfg.BatchSize)
		}
		var logged float64
		testkit.Eventually(t, 10*time.Second, "deliveries log", func() bool {
			page, err := call[events.WebhookDeliveriesRequest, events.WebhookDeliveries](h, b.Names.WebhooksDeliveries(),
				events.WebhookDeliveriesRequest{AccountID: 1, ID: wh.ID, Limit: 200})
			if err != nil {
				t.Fatal(err)
			}
			logged = 0
			for _, d := range page.Deliveries {
				logged += float64(d.Events)
			}
			return logged == total
		})
		if n, _ := h.store.Pending(ctx, wh.ID); n != 0 {
			t.Fatalf("%d events still pending", n)
		}
	})
}
