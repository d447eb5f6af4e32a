package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/apitosms/apitosms/libs/broker"
	libconsumer "github.com/apitosms/apitosms/libs/consumer"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/ingest"
	"github.com/apitosms/apitosms/services/queue/internal/metrics"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// A process that stored a batch and died before acking it: the stream
// redelivers the batch (after AckWait; the test naks to bring that forward)
// to the next process, whose window also takes a message published since.
// Every position is stored once with its own text, the second process adds
// only the new message's rows, and a reader that waits for the ingest floor
// (CatchUp, as get_messages does) then finds every message.
func TestAcceptedCrashBetweenCommitAndAck(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		br := b.Broker(t)
		st := store.New(b.DB(t, store.Service))
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		const perEvent = 50
		want := map[int64]string{}
		publishAccepted(t, br, b.Names, want, perEvent, "a", "b", "c", "d")

		// The first process: pulls the four from the durable, commits them,
		// dies before acking.
		msgs := testkit.Pull(t, br, b.Names.AcceptedStream(), events.DurableQueueIngest, 4)
		first := ingest.NewAccepted(st, metrics.New(prometheus.NewRegistry()), testkit.Logger(t))
		if err := first.Handle(ctx, msgs); err != nil {
			t.Fatalf("first process: %v", err)
		}
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		for _, msg := range msgs {
			if err := msg.Nak(); err != nil {
				t.Fatal(err)
			}
		}
		publishAccepted(t, br, b.Names, want, perEvent, "e")

		// The next process.
		m := runIngest(t, br, b.Names, st)

		checkMessages(t, st, want)
		if dead := testkit.DeadLetters(t, br, b.Names); len(dead) != 0 {
			t.Fatalf("%d dead letters, want none (a redelivery must store nothing and fail nothing)", len(dead))
		}
		if got := testutil.ToFloat64(m.Ingested); got != perEvent {
			t.Fatalf("the next process inserted %v rows, want %d (the new message's only)", got, perEvent)
		}
	})
}

// A malformed message among good ones in one window fails alone: it is
// dead-lettered, and the messages around it are stored and acked.
func TestAcceptedPoisonFailsAlone(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		br := b.Broker(t)
		st := store.New(b.DB(t, store.Service))
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		const perEvent = 20
		want := map[int64]string{}
		publishAccepted(t, br, b.Names, want, perEvent, "a")
		if _, err := br.JS.Publish(ctx, b.Names.AcceptedSubject(), []byte("{not json")); err != nil {
			t.Fatal(err)
		}
		publishAccepted(t, br, b.Names, want, perEvent, "b")

		runIngest(t, br, b.Names, st)

		checkMessages(t, st, want)
		dead := testkit.DeadLetters(t, br, b.Names)
		if len(dead) != 1 || string(dead[0].Data) != "{not json" {
			t.Fatalf("dead letters %v, want the malformed message alone", dead)
		}
	})
}

// publishAccepted publishes one AcceptedBatch of perEvent items per label
// and records each item's position and text in want.
func publishAccepted(t *testing.T, br *broker.Broker, n events.Names, want map[int64]string, perEvent int, labels ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, label := range labels {
		items := make([]events.AcceptedSMS, perEvent)
		for i := range items {
			items[i] = events.AcceptedSMS{AccountID: int64(1 + i%3), Phone: "+15550000", Text: fmt.Sprintf("%s %d", label, i)}
		}
		data, err := json.Marshal(events.AcceptedBatch{AcceptedAt: time.Now(), Items: items})
		if err != nil {
			t.Fatal(err)
		}
		ack, err := br.JS.Publish(ctx, n.AcceptedSubject(), data)
		if err != nil {
			t.Fatal(err)
		}
		for i, it := range items {
			want[events.Position(ack.Sequence, i)] = it.Text
		}
	}
}

// runIngest runs the queue's ingest consumer storing into st (a 200 ms
// window, one attempt before dead-lettering) until the test ends; it
// returns the handler's metrics once everything published so far is
// processed.
func runIngest(t *testing.T, br *broker.Broker, n events.Names, st *store.Store) *metrics.Metrics {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry())
	h := ingest.NewAccepted(st, m, testkit.Logger(t))
	t.Cleanup(func() { _ = h.Close() }) // runs after the consumer stopped
	cfg := libconsumer.Config{
		Stream:     n.AcceptedStream(),
		Durable:    events.DurableQueueIngest,
		DeadLetter: n.DeadLetterSubject(events.DurableQueueIngest),
		Batch:      16,
		Window:     200 * time.Millisecond,
		MaxDeliver: 1,
	}
	cm := libconsumer.NewMetrics(prometheus.NewRegistry(), "queue")
	testkit.Run(t, func(ctx context.Context) error {
		return libconsumer.Run(ctx, br.JS, cfg, h.Handle, cm, testkit.Logger(t))
	})
	testkit.CaughtUp(t, br, n.AcceptedStream(), events.DurableQueueIngest)
	return m
}

// checkMessages fails unless the messages table holds exactly want
// (position → text).
func checkMessages(t *testing.T, st *store.Store, want map[int64]string) {
	t.Helper()
	var rows []store.Message
	if err := st.DB().NewSelect().Model(&rows).Order("pos").Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for _, r := range rows {
		if w, ok := want[r.Pos]; !ok || r.Text != w {
			t.Fatalf("row at %d has %q, want %q (present: %v)", r.Pos, r.Text, w, ok)
		}
	}
}
