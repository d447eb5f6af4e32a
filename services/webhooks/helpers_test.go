package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/webhooks"
	"github.com/apitosms/apitosms/services/webhooks/internal/store"
)

// harness is a running webhooks service on one backend.
type harness struct {
	b     testkit.Backend
	br    *broker.Broker
	store *store.Store
	reg   *prometheus.Registry
}

// testConfig delivers to loopback receivers and retries quickly.
func testConfig() webhooks.Config {
	cfg := webhooks.DefaultConfig()
	cfg.AllowPrivate = true
	cfg.RetrySchedule = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	cfg.Poll = 50 * time.Millisecond
	cfg.Timeout = 3 * time.Second
	return cfg
}

func start(t testing.TB, b testkit.Backend, cfg webhooks.Config) *harness {
	t.Helper()
	h := &harness{b: b, br: b.Broker(t), reg: prometheus.NewRegistry()}
	db := b.DB(t, "webhooks")
	svc, err := webhooks.New(context.Background(), cfg, webhooks.Deps{
		Broker: h.br, DB: db, Names: b.Names, Registerer: h.reg, Log: testkit.Logger(t),
	})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	h.store = store.New(db)
	testkit.Run(t, svc.Run)
	testkit.Eventually(t, 10*time.Second, "webhooks RPC answering", func() bool {
		_, err := call[events.WebhookListRequest, events.WebhookList](h, b.Names.WebhooksList(), events.WebhookListRequest{AccountID: 1})
		return err == nil
	})
	return h
}

func call[Req, Resp any](h *harness, subject string, req Req) (Resp, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return rpc.Call[Req, Resp](ctx, h.br.Conn, subject, req)
}

// create makes an endpoint of account for url.
func (h *harness) create(t testing.TB, account int64, url string, batch bool, types ...string) events.Webhook {
	t.Helper()
	return mustCall[events.WebhookCreateRequest, events.Webhook](t, h, h.b.Names.WebhooksCreate(),
		events.WebhookCreateRequest{AccountID: account, URL: url, Batch: batch, Events: types})
}

// notify publishes one event of account and returns its id.
func (h *harness) notify(t testing.TB, account int64, typ string, data string) string {
	t.Helper()
	id := events.NewNotificationID()
	if err := events.PublishNotification(context.Background(), h.br.JS, h.b.Names, events.Notification{
		ID: id, AccountID: account, Type: typ, Data: json.RawMessage(data),
	}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	return id
}

func (h *harness) metric(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	return testkit.Metric(t, h.reg, name, labels)
}

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
	at     time.Time
}

func (r received) id() string { return r.header.Get("webhook-id") }

// receiver is an httptest server recording every request; answer decides
// the status of the n-th request (0-based).
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	got      []received
	inFlight int
	maxIn    int
	answer   func(n int, r *http.Request) int
}

func newReceiver(t testing.TB, answer func(n int, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	if rc.answer == nil {
		rc.answer = func(int, *http.Request) int { return 200 }
	}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body, at: time.Now()})
		rc.inFlight++
		rc.maxIn = max(rc.maxIn, rc.inFlight)
		rc.mu.Unlock()
		status := rc.answer(n, r)
		rc.mu.Lock()
		rc.inFlight--
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// verify checks a request's signature with the Standard Webhooks reference
// library (an implementation this project did not write).
func verify(t testing.TB, secret string, r received) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(r.body, r.header); err != nil {
		t.Fatalf("signature of %s does not verify: %v (header %q)", r.id(), err, r.header.Get("webhook-signature"))
	}
}

// body is a single delivery's body.
type body struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func data(i int) string { return fmt.Sprintf(`{"hash":"%016x","status":2,"statusName":"sent"}`, i) }

func mustCall[Req, Resp any](t testing.TB, h *harness, subject string, req Req) Resp {
	t.Helper()
	r, err := call[Req, Resp](h, subject, req)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	return r
}
