package webhooks_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// Fan-out and delivery end to end: b.N events published to the notify
// stream, stored for one batch endpoint, and POSTed to a local receiver in
// batches of up to 500. Reports delivered events per second (issue target:
// 20,000/s). Run with e.g. -benchtime=100000x; set the test backend
// variables to measure PostgreSQL.
func BenchmarkFanoutAndBatchDelivery(b *testing.B) { benchmarkDelivery(b, false) }

// The same with the receiver held until every event is stored, so the two
// phases are measured apart: stored/s is fan-out alone, delivered/s the
// batch POSTs alone.
func BenchmarkFanoutThenBatchDelivery(b *testing.B) { benchmarkDelivery(b, true) }

func benchmarkDelivery(b *testing.B, phased bool) {
	b.Helper()
	backend := benchBackend(b)
	cfg := testConfig()
	cfg.IngestBatch = 1000
	h := start(b, backend, cfg)
	target := int64(b.N)
	gate := make(chan struct{})
	if !phased {
		close(gate)
	}
	srv, delivered, done := countingReceiver(target, gate)
	defer srv.Close()
	h.create(b, 1, srv.URL, true)

	b.ResetTimer()
	start := time.Now()
	// Producers publish what they learn together in one stream message
	// (events.PublishNotifications): one fsync per 1000 events, not per event.
	for i := 0; i < b.N; i += events.MaxNotificationsPerMessage {
		publishSent(b, h, 1, min(events.MaxNotificationsPerMessage, b.N-i))
	}
	select {
	case <-h.br.JS.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publish did not complete")
	}
	published := time.Since(start)
	var stored time.Duration
	var storedErr error
	storedDone := make(chan struct{})
	go func() {
		defer close(storedDone)
		// Only the metric says when all are stored: poll it, gently (a
		// gather also reads the backlog from the database).
		if !testkit.Within(5*time.Minute, 50*time.Millisecond, func() bool {
			v, err := testkit.MetricValue(h.reg, "apitosms_webhooks_enqueued_total", nil)
			if err != nil {
				storedErr = err
				return true
			}
			return v >= float64(b.N)
		}) {
			storedErr = fmt.Errorf("not all %d events stored in 5 minutes", b.N)
		}
		stored = time.Since(start)
	}()
	deliverStart := start
	if phased {
		<-storedDone
		if storedErr != nil {
			b.Fatal(storedErr)
		}
		deliverStart = time.Now()
		close(gate)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("delivered %d of %d", delivered.Load(), b.N)
	}
	took := time.Since(start)
	b.StopTimer()
	<-storedDone
	if storedErr != nil {
		b.Fatal(storedErr)
	}
	b.ReportMetric(float64(b.N)/stored.Seconds(), "stored/s")
	if phased {
		b.ReportMetric(float64(b.N)/time.Since(deliverStart).Seconds(), "delivered/s")
	}
	b.ReportMetric(float64(b.N)/took.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/published.Seconds(), "published/s")
}

// BenchmarkTrickleDelivery is the drain's shape: a producer message of 200
// events every 10 ms (20,000 events/s), round robin over four accounts
// with a batch endpoint each, so fan-out transactions and POSTs come one
// chunk at a time rather than from a backlog. It reports the whole test
// process's CPU (broker, fan-out, delivery, receiver) per event delivered:
// compare builds by that figure, run against run (-count, interleaved).
func BenchmarkTrickleDelivery(b *testing.B) {
	backend := benchBackend(b)
	h := start(b, backend, testConfig())
	const perMsg = 200
	target := int64((b.N + perMsg - 1) / perMsg * perMsg)
	srv, delivered, done := countingReceiver(target, nil)
	defer srv.Close()
	const accounts = 4
	for a := int64(1); a <= accounts; a++ {
		h.create(b, a, srv.URL, true)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	start, cpu := time.Now(), testkit.ProcessCPU()
	for i := int64(0); i < target; i += perMsg {
		<-tick.C
		publishSent(b, h, 1+(i/perMsg)%accounts, perMsg)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("delivered %d of %d", delivered.Load(), target)
	}
	took, used := time.Since(start), testkit.ProcessCPU()-cpu
	b.StopTimer()
	b.ReportMetric(float64(used.Microseconds())/float64(target), "cpu-µs/event")
	b.ReportMetric(float64(target)/took.Seconds(), "events/s")
}

// benchBackend is the test backends' external pair when both variables are
// set, else the embedded one.
func benchBackend(b *testing.B) testkit.Backend {
	b.Helper()
	if nu, du := os.Getenv(testkit.EnvNATS), os.Getenv(testkit.EnvDatabase); nu != "" && du != "" {
		return testkit.External(b, nu, du)
	}
	return testkit.Embedded(b)
}

// countingReceiver counts the events POSTed to it (batch items) and closes
// done once target have come; with a gate, it answers nothing before the
// gate is closed.
func countingReceiver(target int64, gate chan struct{}) (*httptest.Server, *atomic.Int64, chan struct{}) {
	delivered := new(atomic.Int64)
	done := make(chan struct{})
	marker := []byte(`{"id":"`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gate != nil {
			<-gate
		}
		body, _ := io.ReadAll(r.Body)
		if delivered.Add(int64(bytes.Count(body, marker))) >= target {
			select {
			case <-done:
			default:
				close(done)
			}
		}
	}))
	return srv, delivered, done
}

// publishSent publishes n message.sent events of account as one stream
// message, as producers do (events.PublishNotifications), asynchronously.
func publishSent(b *testing.B, h *harness, account int64, n int) {
	b.Helper()
	data := []byte(`{"hash":"0123456789abcdef","phone":"+15550000000","text":"Your order #1042 has shipped","status":2,"statusName":"sent"}`)
	ns := make([]events.Notification, n)
	for k := range ns {
		ns[k] = events.Notification{ID: events.NewNotificationID(), AccountID: account, Type: events.TypeMessageSent, At: time.Now(), Data: data}
	}
	body, err := events.Marshal(events.NotificationBatch{Batch: ns})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := h.br.JS.PublishAsync(h.b.Names.NotifyBatchSubject(), body, jetstream.WithMsgID(ns[0].ID)); err != nil {
		b.Fatal(err)
	}
}
