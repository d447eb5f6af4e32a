package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitosms/apitosms/libs/broker"
	libconsumer "github.com/apitosms/apitosms/libs/consumer"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/hashid"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/ingest"
	"github.com/apitosms/apitosms/services/queue/internal/metrics"
	"github.com/apitosms/apitosms/services/queue/internal/notify"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// reportedRig is a store with messages 1..n of account 1 handed out, and a
// Reported handler publishing events (none when events is false).
type reportedRig struct {
	st    *store.Store
	h     *ingest.Reported
	js    jetstream.JetStream
	names events.Names
	m     *metrics.Metrics
}

// Events modes of the rig.
const (
	noEvents    = "none"        // no notifier
	allEvents   = "all"         // every event published (subscriptions unknown)
	subscribers = "subscribers" // only for subscribed accounts; account 1 is not, at first
)

func newReportedRig(t testing.TB, b testkit.Backend, n int, mode string) *reportedRig {
	t.Helper()
	ctx := context.Background()
	br := b.Broker(t)
	st := store.New(b.DB(t, store.Service))
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	in := st.NewInserter()
	defer in.Close()
	for from := 0; from < n; from += 5000 {
		rows := make([]store.NewMessage, min(5000, n-from))
		for i := range rows {
			rows[i] = store.NewMessage{Pos: int64(from + i + 1), AccountID: 1, Phone: "+15550000", Text: "hello", AcceptedAt: time.Now()}
		}
		if _, err := in.Insert(ctx, rows); err != nil {
			t.Fatal(err)
		}
	}
	for claimed := 0; claimed < n; {
		got, err := st.Claim(ctx, 1, 5000, store.NoBound, time.Now(), store.Confirm{})
		if err != nil || len(got) == 0 {
			t.Fatalf("claim: %d, %v", len(got), err)
		}
		claimed += len(got)
	}
	m := metrics.New(prometheus.NewRegistry())
	wait, err := libconsumer.NewCatchUp(ctx, br.JS, b.Names.AcceptedStream(), events.DurableQueueIngest, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var nt *notify.Notifier
	if mode != noEvents {
		codec, err := hashid.Load(ctx, br.JS, b.Names.KeysBucket(), 1)
		if err != nil {
			t.Fatal(err)
		}
		nt = notify.New(br.JS, b.Names, codec, br.Conn.MaxPayload())
	}
	if mode == subscribers {
		nt.OnlySubscribed(knownSubscriptions(t, br, b.Names), nil)
	}
	// Through a claim group, as the service does (on SQLite the reports
	// then share its transactions).
	claims := st.NewClaimGroup(nil)
	t.Cleanup(claims.Close)
	return &reportedRig{st: st, h: ingest.NewReported(claims, wait, nt, m, testkit.Logger(t)), js: br.JS, names: b.Names, m: m}
}

// reportedMsgs publishes ReportedBatch messages of size reports each (sent,
// by one phone) for positions from..from+count-1 and reads them back.
func (r *reportedRig) reportedMsgs(t testing.TB, from, count, size int) []jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	at := time.Now()
	msgs := 0
	for i := from; i < from+count; i += size {
		ev := events.ReportedBatch{AccountID: 1, ReportedAt: at, Device: "MyPhone"}
		for p := i; p < min(i+size, from+count); p++ {
			ev.Items = append(ev.Items, events.Reported{Pos: int64(p), Status: events.StatusSent})
		}
		data, _ := json.Marshal(ev)
		if _, err := r.js.Publish(ctx, r.names.ReportedSubject(), data); err != nil {
			t.Fatal(err)
		}
		msgs++
	}
	return fetchLast(t, r.js, r.names.ReportedStream(), msgs)
}

// fetchLast reads the last count messages of stream without acking them.
func fetchLast(t testing.TB, js jetstream.JetStream, stream string, count int) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: info.State.LastSeq - uint64(count) + 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(count, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for msg := range batch.Messages() {
		out = append(out, msg)
	}
	if len(out) != count {
		t.Fatalf("fetched %d messages, want %d", len(out), count)
	}
	return out
}

// A reported batch handled twice (redelivered after its events were
// published, or after a crash before the ack) publishes the same events
// under the same ids: the notify stream stores them once.
func TestReportedRedeliveryPublishesSameEvents(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		r := newReportedRig(t, b, 3, allEvents)
		msgs := r.reportedMsgs(t, 1, 3, 3)
		for range 2 {
			if err := r.h.Handle(ctx, msgs); err != nil {
				t.Fatal(err)
			}
		}
		s, err := r.js.Stream(ctx, r.names.NotifyStream())
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 1 {
			t.Fatalf("notify stream holds %d messages after a redelivery, want 1", info.State.Msgs)
		}
		got := fetchLast(t, r.js, r.names.NotifyStream(), 1)[0]
		var batch events.NotificationBatch
		if err := events.Unmarshal(got.Data(), &batch); err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, n := range batch.Batch {
			if n.Type != events.TypeMessageSent || n.AccountID != 1 {
				t.Fatalf("event %+v", n)
			}
			ids[n.ID] = true
		}
		if len(ids) != 3 {
			t.Fatalf("event ids %v", ids)
		}
	})
}

// knownSubscriptions runs the queue's subscriptions table against a stand-in
// for the webhooks service on the real NATS server, answering that no
// account has an endpoint, and returns it once loaded.
func knownSubscriptions(t testing.TB, br *broker.Broker, names events.Names) *notify.Subscriptions {
	t.Helper()
	m := rpc.NewMetrics(prometheus.NewRegistry(), "webhooks")
	srv := rpc.NewServer(br.Conn, events.GroupWebhooks, 1, m, testkit.Logger(t))
	t.Cleanup(func() { srv.Close(context.Background()) })
	if err := rpc.Handle(srv, names.WebhooksSubscriptions(), "subscriptions",
		func(context.Context, events.SubscriptionsRequest) (events.SubscriptionsPage, error) {
			return events.SubscriptionsPage{Accounts: []events.WebhookSubscription{}}, nil
		}); err != nil {
		t.Fatal(err)
	}
	subs, err := notify.NewSubscriptions(br.Conn, names, testkit.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); subs.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	// Known is the observable state (nothing signals a load).
	testkit.Eventually(t, 10*time.Second, "subscriptions loaded", subs.Known)
	return subs
}

// notifyCount is how many messages the notify stream holds.
func notifyCount(t testing.TB, r *reportedRig) uint64 {
	t.Helper()
	ctx := context.Background()
	s, err := r.js.Stream(ctx, r.names.NotifyStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// Reports of an account without a subscribed endpoint publish nothing; once
// the webhooks service announced an endpoint (published and flushed, as it
// does before answering the create), the very next reports publish their
// events: no wait between the two.
func TestReportedPublishesOnlyForSubscribers(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		r := newReportedRig(t, b, 6, subscribers)
		if err := r.h.Handle(ctx, r.reportedMsgs(t, 1, 3, 3)); err != nil {
			t.Fatal(err)
		}
		if n := notifyCount(t, r); n != 0 {
			t.Fatalf("%d event messages published for an account without webhooks", n)
		}
		br := b.Broker(t) // the webhooks service's own connection
		data, _ := events.Marshal(events.WebhookSubscription{AccountID: 1, Types: []string{events.TypeMessageFailed}})
		if err := br.Conn.Publish(b.Names.WebhooksChanged(), data); err != nil {
			t.Fatal(err)
		}
		if err := br.Conn.Flush(); err != nil {
			t.Fatal(err)
		}
		// A type the account does not take: still nothing.
		msgs := r.reportedMsgs(t, 4, 1, 1)
		if err := r.h.Handle(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		if n := notifyCount(t, r); n != 0 {
			t.Fatalf("message.sent published for an account subscribed to message.failed only")
		}
		ev := events.ReportedBatch{AccountID: 1, ReportedAt: time.Now(), Device: "MyPhone",
			Items: []events.Reported{{Pos: 5, Status: events.StatusFailed}, {Pos: 6, Status: events.StatusFailed}}}
		raw, _ := json.Marshal(ev)
		if _, err := r.js.Publish(ctx, r.names.ReportedSubject(), raw); err != nil {
			t.Fatal(err)
		}
		if err := r.h.Handle(ctx, fetchLast(t, r.js, r.names.ReportedStream(), 1)); err != nil {
			t.Fatal(err)
		}
		if n := notifyCount(t, r); n != 1 {
			t.Fatalf("notify stream holds %d messages, want the one with both message.failed events", n)
		}
		var batch events.NotificationBatch
		if err := events.Unmarshal(fetchLast(t, r.js, r.names.NotifyStream(), 1)[0].Data(), &batch); err != nil {
			t.Fatal(err)
		}
		if len(batch.Batch) != 2 || batch.Batch[0].Type != events.TypeMessageFailed {
			t.Fatalf("events %+v", batch.Batch)
		}
	})
}

// BenchmarkReportedHandle1000 is the queue's report path: one Handle of
// 10 ReportedBatch messages of 100 reports (handed-out messages, one phone),
// recording outcomes and, with events, publishing their message.sent events.
func BenchmarkReportedHandle1000(b *testing.B) {
	for _, mode := range []string{noEvents, allEvents, subscribers} {
		b.Run(fmt.Sprintf("events=%s", mode), func(b *testing.B) {
			backend := testkit.Embedded(b)
			const size = 1000
			r := newReportedRig(b, backend, (b.N+1)*size, mode)
			batches := make([][]jetstream.Msg, b.N)
			for i := range b.N {
				batches[i] = r.reportedMsgs(b, i*size+1, size, 100)
			}
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				if err := r.h.Handle(ctx, batches[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "reports/s")
		})
	}
}
