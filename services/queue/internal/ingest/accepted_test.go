package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/ingest"
	"github.com/apitosms/apitosms/services/queue/internal/metrics"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// Handling the same stream messages twice (a redelivery) stores each
// message once, and a message whose hash was taken by another keeps its
// replacement on the second pass instead of getting a new row.
func TestAcceptedIdempotent(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		br := b.Broker(t)
		st := store.New(b.DB(t, store.Service))
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		m := metrics.New(prometheus.NewRegistry())
		h := ingest.NewAccepted(st, m, testkit.Logger(t))

		const events1, perEvent = 3, 400
		for e := range events1 {
			items := make([]events.AcceptedSMS, perEvent)
			for i := range items {
				items[i] = events.AcceptedSMS{AccountID: int64(1 + i%3), Phone: "+15550000", Text: fmt.Sprintf("hi %d/%d", e, i)}
			}
			data, _ := json.Marshal(events.AcceptedBatch{AcceptedAt: time.Now(), Items: items})
			if _, err := br.JS.Publish(ctx, b.Names.AcceptedSubject(), data); err != nil {
				t.Fatal(err)
			}
		}
		msgs := fetch(t, br.JS, b.Names, events1)

		if err := h.Handle(ctx, msgs); err != nil {
			t.Fatalf("first handle: %v", err)
		}
		if err := h.Handle(ctx, msgs); err != nil {
			t.Fatalf("second handle: %v", err)
		}
		if err := h.Handle(ctx, msgs[1:2]); err != nil {
			t.Fatalf("third handle: %v", err)
		}
		n, err := st.DB().NewSelect().Model((*store.Message)(nil)).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != events1*perEvent {
			t.Fatalf("%d rows after redelivery, want %d", n, events1*perEvent)
		}
		if got := testutil.ToFloat64(m.Ingested); got != events1*perEvent {
			t.Fatalf("ingested counter %v, want %d", got, events1*perEvent)
		}
	})
}

// fetch reads the first n messages of the accepted stream without acking
// them (an ordered consumer, so the durable is untouched).
func fetch(t *testing.T, js jetstream.JetStream, n events.Names, count int) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, n.AcceptedStream(), jetstream.OrderedConsumerConfig{})
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
