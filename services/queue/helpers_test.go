package queue_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// instance is one running queue service with its own broker connection,
// database handle and metrics registry.
type instance struct {
	br   *broker.Broker
	db   *bun.DB
	reg  *prometheus.Registry
	stop func() // cancels Run and checks it returned nil
}

// start runs a queue service on b and waits until it answers claims.
func start(t *testing.T, b testkit.Backend, tune ...func(*queue.Config)) *instance {
	t.Helper()
	in := &instance{br: b.Broker(t), db: b.DB(t, store.Service), reg: prometheus.NewRegistry()}
	cfg := queue.DefaultConfig()
	cfg.ShutdownTimeout = 10 * time.Second
	for _, f := range tune {
		f(&cfg)
	}
	svc, err := queue.New(context.Background(), cfg, queue.Deps{
		Broker: in.br, DB: in.db, Names: b.Names, Registerer: in.reg, Log: testkit.Logger(t),
	})
	if err != nil {
		t.Fatalf("new queue: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- svc.Run(ctx) }()
	var stopped atomic.Bool
	in.stop = func() {
		if stopped.Swap(true) {
			return
		}
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("queue Run returned %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("queue Run did not return after cancel")
		}
	}
	t.Cleanup(in.stop) // runs before the broker and database close
	// Account 0 is refused, so this probe never claims anything.
	testkit.Eventually(t, 10*time.Second, "queue answering claims", func() bool {
		_, err := claimErr(in.br, b.Names, 0, 1)
		e, ok := apperr.As(err)
		return ok && e.Code == "bad_request"
	})
	testkit.Eventually(t, 10*time.Second, "queue ready", func() bool { return svc.Ready(context.Background()) == nil })
	return in
}

// sms makes distinct messages; texts are unique per factory.
type sms struct{ n int }

func (f *sms) next(account int64) events.AcceptedSMS {
	f.n++
	return events.AcceptedSMS{
		AccountID: account,
		Phone:     fmt.Sprintf("+1555%07d", f.n),
		Text:      fmt.Sprintf("message %d", f.n),
	}
}

// publish publishes one AcceptedBatch and returns its stream sequence.
func publish(t testing.TB, br *broker.Broker, n events.Names, items ...events.AcceptedSMS) uint64 {
	t.Helper()
	data, err := json.Marshal(events.AcceptedBatch{AcceptedAt: time.Now().UTC(), Items: items})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := br.JS.Publish(context.Background(), n.AcceptedSubject(), data)
	if err != nil {
		t.Fatalf("publish accepted: %v", err)
	}
	return ack.Sequence
}

// report publishes one ReportedBatch.
func report(t testing.TB, br *broker.Broker, n events.Names, account int64, items ...events.Reported) {
	t.Helper()
	data, err := json.Marshal(events.ReportedBatch{AccountID: account, ReportedAt: time.Now().UTC(), Items: items})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := br.JS.Publish(context.Background(), n.ReportedSubject(), data); err != nil {
		t.Fatalf("publish reported: %v", err)
	}
}

func claimErr(br *broker.Broker, n events.Names, account int64, limit int) ([]events.ClaimedSMS, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := rpc.Call[events.ClaimRequest, events.ClaimReply](ctx, br.Conn, n.QueueClaim(),
		events.ClaimRequest{AccountID: account, Limit: limit})
	return reply.Messages, err
}

// claim claims and fails the test on error; the reply must not be null.
func claim(t testing.TB, br *broker.Broker, n events.Names, account int64, limit int) []events.ClaimedSMS {
	t.Helper()
	msgs, err := claimErr(br, n, account, limit)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if msgs == nil {
		t.Fatal("claim reply messages is null, want an array")
	}
	return msgs
}

// texts lists the texts of claimed messages (unique per sms factory).
func texts(msgs []events.ClaimedSMS) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Text
	}
	return out
}

func itemTexts(items ...events.AcceptedSMS) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Text
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// statusOf reads a message's stored status by hash; -1 if not stored (yet).
func statusOf(t testing.TB, db *bun.DB, text string) int {
	t.Helper()
	var m store.Message
	err := db.NewSelect().Model(&m).Where("text = ?", text).Scan(context.Background())
	if errors.Is(err, sql.ErrNoRows) {
		return -1
	}
	if err != nil {
		t.Fatalf("select %s: %v", text, err)
	}
	return int(m.Status)
}

// counter reads a counter's value from reg.
func counter(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return testkit.Metric(t, reg, name, nil)
}
