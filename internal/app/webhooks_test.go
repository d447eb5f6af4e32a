package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/testkit"
)

// hookReceiver records every webhook POST.
type hookReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	got   []hookRequest
	delay time.Duration
}

type hookRequest struct {
	header http.Header
	body   []byte
}

func newHookReceiver(t *testing.T, delay time.Duration) *hookReceiver {
	t.Helper()
	rc := &hookReceiver{delay: delay}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, hookRequest{header: r.Header.Clone(), body: body})
		rc.mu.Unlock()
		time.Sleep(rc.delay) // the thing under test, not synchronisation: a slow receiver keeps POSTs in flight
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *hookReceiver) requests() []hookRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hookRequest(nil), rc.got...)
}

func verifyHook(t *testing.T, secret string, r hookRequest) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(r.body, r.header); err != nil {
		t.Fatalf("webhook %s does not verify: %v", r.header.Get("webhook-id"), err)
	}
}

// The webhooks endpoints through the real HTTP server: create, list, get,
// patch, test (delivered, signed), deliveries, rotate, delete, and the
// contract's errors, including 404 for another token's webhook.
func TestWebhooksEndToEnd(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, map[string]string{"APITOSMS_WEBHOOK_ALLOW_PRIVATE": "true"})
		_, tok := account(t, p.base, 1000, 60)
		_, other := account(t, p.base, 1000, 60)
		rc := newHookReceiver(t, 0)
		api := p.base + "/api/" + tok + "/webhooks"

		wantError(t, do(t, "POST", api, "{nope"), 400, "invalid_json")
		wantError(t, do(t, "POST", api, "[1]"), 400, "invalid_json")
		wantError(t, do(t, "POST", api, map[string]any{"url": 5}), 400, "invalid_url")
		wantError(t, do(t, "POST", api, map[string]any{}), 400, "invalid_url")
		wantError(t, do(t, "POST", api, map[string]any{"url": "ftp://example.com/"}), 400, "invalid_url")
		wantError(t, do(t, "POST", api, map[string]any{"url": rc.srv.URL, "events": []string{"sms.exploded"}}), 400, "invalid_events")
		wantError(t, do(t, "POST", api, map[string]any{"url": rc.srv.URL, "events": "message.sent"}), 400, "invalid_events")
		wantError(t, do(t, "POST", api, map[string]any{"url": rc.srv.URL, "batch": "yes"}), 400, "invalid_body")
		wantError(t, do(t, "GET", p.base+"/api/"+strings.Repeat("0", 64)+"/webhooks", nil), 401, "invalid_token")

		r := do(t, "POST", api, map[string]any{"url": rc.srv.URL + "/hook", "events": []string{"webhook.test", "message.sent"}, "description": "shop"})
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		created := r.json(t)
		id, secret := created["id"].(string), created["secret"].(string)
		for _, k := range []string{"id", "url", "events", "batch", "enabled", "description", "secret", "createdAt"} {
			if _, ok := created[k]; !ok {
				t.Fatalf("create answer lacks %q: %s", k, r.body)
			}
		}
		if !strings.HasPrefix(secret, "whsec_") || created["enabled"] != true || r.header.Get("X-RateLimit-Limit") != "600" {
			t.Fatalf("created %s headers %v", r.body, r.header)
		}

		r = do(t, "GET", api, nil)
		if r.status != 200 || strings.Contains(string(r.body), "whsec_") || len(r.json(t)["webhooks"].([]any)) != 1 {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		if r = do(t, "GET", api+"/"+id, nil); r.status != 200 || r.json(t)["id"] != id || strings.Contains(string(r.body), "secret") {
			t.Fatalf("get: %d %s", r.status, r.body)
		}
		// Another token's id, a made-up id: the same 404.
		foreign := p.base + "/api/" + other + "/webhooks/" + id
		for _, req := range []struct{ method, url string }{
			{"GET", foreign}, {"PATCH", foreign}, {"DELETE", foreign}, {"POST", foreign + "/test"},
			{"POST", foreign + "/rotate-secret"}, {"GET", foreign + "/deliveries"}, {"GET", api + "/wh_unknown"},
		} {
			var body any
			if req.method == "PATCH" {
				body = map[string]any{"description": "mine now"}
			}
			r := do(t, req.method, req.url, body)
			wantError(t, r, 404, "webhook_not_found")
			if m := r.json(t); len(m) != 2 || m["error"] != "Webhook not found" {
				t.Fatalf("%s %s: %d %s", req.method, req.url, r.status, r.body)
			}
		}
		if r = do(t, "PATCH", api+"/"+id, map[string]any{"description": "shop 2", "url": "https://127.0.0.1:1/x"}); r.status != 200 || r.json(t)["description"] != "shop 2" {
			t.Fatalf("patch: %d %s", r.status, r.body)
		}
		if r = do(t, "PATCH", api+"/"+id, map[string]any{"url": rc.srv.URL + "/hook"}); r.status != 200 {
			t.Fatalf("patch back: %d %s", r.status, r.body)
		}

		r = do(t, "POST", api+"/"+id+"/test", nil)
		if r.status != 202 {
			t.Fatalf("test: %d %s", r.status, r.body)
		}
		eventID := r.json(t)["eventId"].(string)
		testkit.Eventually(t, 15*time.Second, "test event delivered", func() bool { return len(rc.requests()) == 1 })
		got := rc.requests()[0]
		verifyHook(t, secret, got)
		if got.header.Get("webhook-id") != eventID || !strings.Contains(string(got.body), `"type":"webhook.test"`) {
			t.Fatalf("test delivery %v %s", got.header, got.body)
		}
		var log map[string]any
		testkit.EventuallyEvery(t, 10*time.Second, 100*time.Millisecond, "deliveries log", func() bool {
			r = do(t, "GET", api+"/"+id+"/deliveries?limit=10", nil)
			log = r.json(t)
			return r.status == 200 && len(log["deliveries"].([]any)) == 1
		})
		d := log["deliveries"].([]any)[0].(map[string]any)
		if d["eventId"] != eventID || d["status"] != "delivered" || d["responseStatus"] != float64(204) || d["attempt"] != float64(1) || log["nextCursor"] != nil {
			t.Fatalf("log %s", r.body)
		}
		for _, k := range []string{"id", "eventId", "type", "attempt", "status", "responseStatus", "durationMs", "error", "at"} {
			if _, ok := d[k]; !ok {
				t.Fatalf("log entry lacks %q: %s", k, r.body)
			}
		}
		wantError(t, do(t, "GET", api+"/"+id+"/deliveries?limit=abc", nil), 400, "invalid_limit")
		wantError(t, do(t, "GET", api+"/"+id+"/deliveries?limit=0", nil), 400, "invalid_limit")
		wantError(t, do(t, "GET", api+"/"+id+"/deliveries?cursor=%21%21", nil), 400, "invalid_cursor")

		r = do(t, "POST", api+"/"+id+"/rotate-secret", nil)
		if r.status != 200 || !strings.HasPrefix(r.json(t)["secret"].(string), "whsec_") {
			t.Fatalf("rotate: %d %s", r.status, r.body)
		}
		if r = do(t, "DELETE", api+"/"+id, nil); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		wantError(t, do(t, "GET", api+"/"+id, nil), 404, "webhook_not_found")
	})
}

// The webhooks endpoints count in the read window, which neither spends nor
// is spent by the send window of §1.
func TestReadWindowSeparateFromSendWindow(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, map[string]string{"APITOSMS_READ_RATE_LIMIT": "3"})
		_, tok := account(t, p.base, 1000, 2)
		for i := 0; i < 3; i++ {
			r := do(t, "GET", p.base+"/api/"+tok+"/webhooks", nil)
			if r.status != 200 || r.header.Get("X-RateLimit-Limit") != "3" {
				t.Fatalf("read %d: %d %s %v", i, r.status, r.body, r.header)
			}
		}
		r := do(t, "GET", p.base+"/api/"+tok+"/webhooks", nil)
		wantError(t, r, 429, "rate_limited")
		if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" || r.header.Get("X-RateLimit-Remaining") != "0" {
			t.Fatalf("429 headers %v", r.header)
		}
		// The send window is whole, and spending it leaves reads alone.
		for i := 0; i < 2; i++ {
			if r := do(t, "POST", p.base+"/api/"+tok+"/queue", items("w", 1)); r.status != 200 || r.header.Get("X-RateLimit-Limit") != "2" {
				t.Fatalf("queue %d after reads: %d %s", i, r.status, r.body)
			}
		}
		wantError(t, do(t, "GET", p.base+"/api/"+tok+"/get_messages", nil), 429, "rate_limited")

		_, tok2 := account(t, p.base, 1000, 1)
		do(t, "GET", p.base+"/api/"+tok2+"/get_messages", nil)
		wantError(t, do(t, "GET", p.base+"/api/"+tok2+"/get_messages", nil), 429, "rate_limited")
		if r := do(t, "GET", p.base+"/api/"+tok2+"/webhooks", nil); r.status != 200 {
			t.Fatalf("read after the send window is spent: %d %s", r.status, r.body)
		}
	})
}

// startWebhooksOS runs `apitosms -target=webhooks` as its own OS process on
// the backend's NATS server and database.
func startWebhooksOS(t *testing.T, b testkit.Backend, addr string) *exec.Cmd {
	t.Helper()
	return startTargetOS(t, b, "webhooks", addr,
		"APITOSMS_WEBHOOK_ALLOW_PRIVATE=true",
		"APITOSMS_WEBHOOK_TIMEOUT=2s", // lease of a claimed event: timeout + 5 s
		"APITOSMS_WEBHOOK_POLL=100ms",
	)
}

// At-least-once across SIGKILL: the webhooks service, in its own process, is
// killed while POSTs are in flight; after a restart every event arrives,
// signed, and a duplicate carries the same webhook-id and body.
func TestWebhooksSurviveSIGKILL(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		br := b.Broker(t)
		addr := freeAddr(t)
		cmd := startWebhooksOS(t, b, addr)
		rc := newHookReceiver(t, 25*time.Millisecond)

		const account = 42
		var hook events.Webhook
		testkit.Eventually(t, 30*time.Second, "webhook created", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var err error
			hook, err = rpc.Call[events.WebhookCreateRequest, events.Webhook](ctx, br.Conn, b.Names.WebhooksCreate(),
				events.WebhookCreateRequest{AccountID: account, URL: rc.srv.URL})
			return err == nil
		})
		const total = 400
		want := map[string]string{} // id -> data
		for i := 0; i < total; i++ {
			id := events.NewNotificationID()
			data := `{"hash":"` + id[4:20] + `","status":2}`
			want[id] = data
			if err := events.PublishNotification(context.Background(), br.JS, b.Names, events.Notification{
				ID: id, AccountID: account, Type: events.TypeMessageSent, Data: json.RawMessage(data),
			}); err != nil {
				t.Fatal(err)
			}
		}
		testkit.Eventually(t, 30*time.Second, "deliveries under way", func() bool { return len(rc.requests()) >= 40 })
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		before := len(rc.requests())
		if before >= total {
			t.Fatalf("all %d delivered before the kill: nothing was in flight", before)
		}

		cmd = startWebhooksOS(t, b, addr)
		seen := map[string]int{}
		bodies := map[string]string{}
		testkit.Eventually(t, 90*time.Second, "every event delivered", func() bool {
			seen = map[string]int{}
			for _, r := range rc.requests() {
				seen[r.header.Get("webhook-id")]++
			}
			return len(seen) >= total
		})
		// Wait for the backlog to empty too: the POSTs in flight at the kill
		// were received but not recorded, so they are sent again once their
		// lease runs out (duplicates, same webhook-id).
		testkit.Eventually(t, 60*time.Second, "backlog empty", func() bool {
			r, err := send("GET", "http://"+addr+"/metrics", nil)
			return err == nil && strings.Contains(string(r.body), "\napitosms_webhooks_backlog_events 0\n")
		})
		dups := 0
		for _, r := range rc.requests() {
			id := r.header.Get("webhook-id")
			data, ok := want[id]
			if !ok {
				t.Fatalf("unknown webhook-id %s", id)
			}
			verifyHook(t, hook.Secret, r)
			var body struct {
				Type string          `json:"type"`
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(r.body, &body); err != nil || body.Type != events.TypeMessageSent || string(body.Data) != data {
				t.Fatalf("body of %s: %s", id, r.body)
			}
			if prev, ok := bodies[id]; ok {
				dups++
				if prev != string(r.body) {
					t.Fatalf("duplicate of %s has another body", id)
				}
			}
			bodies[id] = string(r.body)
		}
		t.Logf("%d POSTs before SIGKILL; all %d events delivered after restart, %d duplicates (same webhook-id)", before, total, dups)

		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("SIGTERM: exit %v, want 0", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("SIGTERM: did not exit")
		}
	})
}
