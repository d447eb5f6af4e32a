package status_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/status"
	"github.com/apitosms/apitosms/services/status/internal/store"
)

// harness is a running status service on one backend.
type harness struct {
	b     testkit.Backend
	br    *broker.Broker
	db    *bun.DB
	store *store.Store
	reg   *prometheus.Registry
}

// start runs the service until the test ends, and checks it stops cleanly.
func start(t testing.TB, b testkit.Backend) *harness {
	t.Helper()
	return startWith(t, b, status.DefaultConfig())
}

func startWith(t testing.TB, b testkit.Backend, cfg status.Config) *harness {
	t.Helper()
	return startWrapped(t, b, cfg, nil)
}

// startWrapped is startWith with the service's JetStream wrapped by wrap
// (when not nil); the harness's own broker stays unwrapped.
func startWrapped(t testing.TB, b testkit.Backend, cfg status.Config, wrap func(jetstream.JetStream) jetstream.JetStream) *harness {
	t.Helper()
	h := &harness{b: b, br: b.Broker(t), db: b.DB(t, "status"), reg: prometheus.NewRegistry()}
	svcBroker := h.br
	if wrap != nil {
		wrapped := *h.br
		wrapped.JS = wrap(h.br.JS)
		svcBroker = &wrapped
	}
	svc, err := status.New(context.Background(), cfg, status.Deps{
		Broker: svcBroker, DB: h.db, Names: b.Names, Registerer: h.reg, Log: testkit.Logger(t),
	})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	h.store = store.New(h.db)
	testkit.Run(t, svc.Run)
	testkit.Eventually(t, 10*time.Second, "status ready", func() bool { return svc.Ready(context.Background()) == nil })
	testkit.Eventually(t, 10*time.Second, "status RPC answering", func() bool {
		_, err := h.apply(events.ApplyRequest{AccountID: 1})
		return err == nil
	})
	return h
}

func (h *harness) apply(req events.ApplyRequest) (events.ApplyReply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return rpc.Call[events.ApplyRequest, events.ApplyReply](ctx, h.br.Conn, h.b.Names.StatusApply(), req)
}

func (h *harness) mustApply(t testing.TB, req events.ApplyRequest) events.ApplyReply {
	t.Helper()
	rep, err := h.apply(req)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return rep
}

// publish puts one AcceptedBatch on the accepted stream and returns its
// stream sequence.
func (h *harness) publish(t testing.TB, items ...events.AcceptedSMS) uint64 {
	t.Helper()
	data, err := json.Marshal(events.AcceptedBatch{AcceptedAt: time.Now().UTC(), Items: items})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := h.br.JS.Publish(context.Background(), h.b.Names.AcceptedSubject(), data)
	if err != nil {
		t.Fatalf("publish accepted: %v", err)
	}
	return ack.Sequence
}

// accept publishes n messages of account in one AcceptedBatch and returns
// their FIFO positions.
func (h *harness) accept(t testing.TB, account int64, n int) []int64 {
	t.Helper()
	items := make([]events.AcceptedSMS, n)
	for i := range items {
		items[i] = events.AcceptedSMS{AccountID: account, Phone: "+10000000000", Text: "hello"}
	}
	seq := h.publish(t, items...)
	out := make([]int64, n)
	for i := range out {
		out[i] = events.Position(seq, i)
	}
	return out
}

// unknownPos is a position no test publishes (its stream sequence is never
// reached).
const unknownPos = int64(1) << 50

// waitStored waits until every position is in the deliveries table.
func (h *harness) waitStored(t testing.TB, positions ...int64) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, "messages ingested", func() bool {
		for _, pos := range positions {
			if _, err := h.store.Get(context.Background(), pos); err != nil {
				return false
			}
		}
		return true
	})
}

func (h *harness) statusOf(t testing.TB, pos int64) int {
	t.Helper()
	d, err := h.store.Get(context.Background(), pos)
	if err != nil {
		t.Fatalf("get %d: %v", pos, err)
	}
	return d.Status
}

// metric returns the value of a counter (summed over label values matching
// labels) or the sample count of a histogram.
func (h *harness) metric(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	return testkit.Metric(t, h.reg, name, labels)
}
