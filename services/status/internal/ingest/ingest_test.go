package ingest_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	libconsumer "github.com/apitosms/apitosms/libs/consumer"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/status/internal/ingest"
	"github.com/apitosms/apitosms/services/status/internal/metrics"
	"github.com/apitosms/apitosms/services/status/internal/store"
)

// Every test stops what it started in its cleanup: nothing may outlive it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A process stores a batch and dies before acking it; the next one gets
// the batch again (the test naks it rather than wait for AckWait) in one
// window with a malformed message and a new one. The redelivered rows are
// stored once and fail nothing, the malformed message alone is
// dead-lettered, and once the ingest floor covers the stream (what the
// status apply waits for) every delivery row is there with its account.
func TestIngestRedeliveryAndPoison(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		br := b.Broker(t)
		db := b.DB(t, store.Service)
		if err := store.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		st := store.New(db)
		want := map[int64]int64{} // position → account
		publish := func(accounts ...int64) {
			t.Helper()
			var ev events.AcceptedBatch
			for _, a := range accounts {
				ev.Items = append(ev.Items, events.AcceptedSMS{AccountID: a, Phone: "+15550000", Text: "hi"})
			}
			data, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			ack, err := br.JS.Publish(ctx, b.Names.AcceptedSubject(), data)
			if err != nil {
				t.Fatal(err)
			}
			for i, a := range accounts {
				want[events.Position(ack.Sequence, i)] = a
			}
		}
		publish(1, 2, 3)
		publish(4, 5)

		// The first process: pulls both from the durable, commits, dies.
		msgs := testkit.Pull(t, br, b.Names.AcceptedStream(), events.DurableStatusIngest, 2)
		if err := ingest.New(st, metrics.New(prometheus.NewRegistry())).Handle(ctx, msgs); err != nil {
			t.Fatalf("first process: %v", err)
		}
		for _, msg := range msgs {
			if err := msg.Nak(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := br.JS.Publish(ctx, b.Names.AcceptedSubject(), []byte("[]")); err != nil {
			t.Fatal(err)
		}
		publish(6)

		// The next process.
		cfg := libconsumer.Config{
			Stream:     b.Names.AcceptedStream(),
			Durable:    events.DurableStatusIngest,
			DeadLetter: b.Names.DeadLetterSubject(events.DurableStatusIngest),
			Batch:      16,
			Window:     200 * time.Millisecond,
			MaxDeliver: 1,
		}
		h := ingest.New(st, metrics.New(prometheus.NewRegistry()))
		cm := libconsumer.NewMetrics(prometheus.NewRegistry(), "status")
		testkit.Run(t, func(ctx context.Context) error {
			return libconsumer.Run(ctx, br.JS, cfg, h.Handle, cm, testkit.Logger(t))
		})
		testkit.CaughtUp(t, br, b.Names.AcceptedStream(), events.DurableStatusIngest)

		var rows []store.Delivery
		if err := db.NewSelect().Model(&rows).Order("pos").Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(want) {
			t.Fatalf("%d delivery rows, want %d", len(rows), len(want))
		}
		for _, r := range rows {
			if a, ok := want[r.Pos]; !ok || r.AccountID != a {
				t.Fatalf("row at %d has account %d, want %d (present: %v)", r.Pos, r.AccountID, a, ok)
			}
		}
		dead := testkit.DeadLetters(t, br, b.Names)
		if len(dead) != 1 || string(dead[0].Data) != "[]" {
			t.Fatalf("dead letters %v, want the malformed message alone", dead)
		}
	})
}
