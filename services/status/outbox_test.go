package status_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/status"
	"github.com/apitosms/apitosms/services/status/internal/apply"
)

// TestOutboxSurvivesBrokenPublish: while the reported stream is gone (a
// broker that refuses the publish), a report is still applied and answered,
// and its ReportedBatch waits in the outbox; once the stream is back, the
// relay publishes it, with the outbox id as Nats-Msg-Id, and the queue's
// durable (queue-reported) receives it: the queue learns the final status.
func TestOutboxSurvivesBrokenPublish(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		cfg := status.DefaultConfig()
		cfg.OutboxInterval, cfg.OutboxAge = 20*time.Millisecond, 50*time.Millisecond
		h := startWith(t, b, cfg)
		const account = 12
		hs := h.accept(t, account, 2)
		h.waitStored(t, hs...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		if err := h.br.JS.DeleteStream(ctx, b.Names.ReportedStream()); err != nil {
			t.Fatal(err)
		}
		rep := h.mustApply(t, events.ApplyRequest{AccountID: account, Device: "d1", Reports: []events.ApplyReport{
			{Index: 0, Pos: hs[0], Status: 2}, {Index: 1, Pos: hs[1], Status: 3},
		}})
		if rep.Updated != 2 {
			t.Fatalf("reply %+v, want 2 updated", rep)
		}
		if got := h.statusOf(t, hs[1]); got != 3 {
			t.Fatalf("status %d, want 3: the report is applied whatever the broker does", got)
		}
		if f := h.metric(t, "apitosms_status_reported_publish_failures_total", nil); f < 1 {
			t.Fatalf("publish failures %v, want at least 1", f)
		}
		// The relay keeps failing meanwhile; the event stays.
		if n, err := h.store.OutboxLen(ctx); err != nil || n != 1 {
			t.Fatalf("outbox holds %d (%v), want 1 event", n, err)
		}

		if err := events.EnsureStreams(ctx, h.br.JS, b.Names, events.Topology{}); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 20*time.Second, "the outbox relayed and emptied", func() bool {
			n, err := h.store.OutboxLen(ctx)
			return err == nil && n == 0
		})
		cons, err := h.br.JS.Consumer(ctx, b.Names.ReportedStream(), events.DurableQueueReported)
		if err != nil {
			t.Fatal(err)
		}
		batch, err := cons.Fetch(10, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var got []events.ReportedBatch
		for msg := range batch.Messages() {
			var ev events.ReportedBatch
			if err := json.Unmarshal(msg.Data(), &ev); err != nil {
				t.Fatal(err)
			}
			if id := msg.Headers().Get(jetstream.MsgIDHeader); len(id) < len(apply.MsgID(0)) || id[:len("status-outbox-")] != "status-outbox-" {
				t.Errorf("Nats-Msg-Id %q, want status-outbox-<id>", id)
			}
			got = append(got, ev)
			if err := msg.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		want := []events.Reported{{Pos: hs[0], Status: 2}, {Pos: hs[1], Status: 3}}
		if len(got) != 1 || got[0].AccountID != account || got[0].Device != "d1" || !reflect.DeepEqual(got[0].Items, want) {
			t.Fatalf("queue-reported received %+v, want one batch of %v", got, want)
		}
		if r := h.metric(t, "apitosms_status_outbox_relayed_total", nil); r != 1 {
			t.Errorf("relayed %v, want 1", r)
		}
	})
}

// TestOutboxEmptiesOnTheFastPath: events a request published itself are
// deleted (inside a later group commit, or by the relay when idle), and
// never published twice.
func TestOutboxEmptiesOnTheFastPath(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		cfg := status.DefaultConfig()
		cfg.OutboxInterval = 20 * time.Millisecond
		h := startWith(t, b, cfg)
		const account = 13
		hs := h.accept(t, account, 3)
		h.waitStored(t, hs...)
		for i, p := range hs {
			h.mustApply(t, events.ApplyRequest{AccountID: account, Reports: []events.ApplyReport{{Index: i, Pos: p, Status: 2}}})
		}
		ctx := context.Background()
		testkit.Eventually(t, 10*time.Second, "the outbox emptied", func() bool {
			n, err := h.store.OutboxLen(ctx)
			return err == nil && n == 0
		})
		info, err := h.br.JS.Stream(ctx, b.Names.ReportedStream())
		if err != nil {
			t.Fatal(err)
		}
		si, err := info.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := si.State.LastSeq; got != 3 {
			t.Errorf("reported stream received %d events, want 3", got)
		}
		if r := h.metric(t, "apitosms_status_outbox_relayed_total", nil); r != 0 {
			t.Errorf("relayed %v, want 0: every request published its own", r)
		}
	})
}
