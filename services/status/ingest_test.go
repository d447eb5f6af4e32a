package status_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/status/internal/ingest"
	"github.com/apitosms/apitosms/services/status/internal/metrics"
	"github.com/apitosms/apitosms/services/status/internal/store"
)

// TestIngestRedelivery hands the same stream messages to the ingest handler
// again: nothing changes, not even a status already reported.
func TestIngestRedelivery(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h := start(t, b)
		const account = 11
		hs := newHashes(300)
		seq := h.publish(t, items(account, hs[:100]...)...)
		h.publish(t, items(account, hs[100:]...)...)
		h.waitStored(t, hs...)
		h.mustApply(t, events.ApplyRequest{AccountID: account, Reports: []events.ApplyReport{{Index: 0, Hash: hs[0], Status: 3}}})
		before, err := h.store.Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cons, err := h.br.JS.OrderedConsumer(ctx, b.Names.AcceptedStream(), jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		fetched, err := cons.Fetch(2, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var msgs []jetstream.Msg
		for m := range fetched.Messages() {
			msgs = append(msgs, m)
		}
		if len(msgs) != 2 {
			t.Fatalf("fetched %d messages, want 2", len(msgs))
		}
		reg := prometheus.NewRegistry()
		m, err := metrics.New(reg)
		if err != nil {
			t.Fatal(err)
		}
		in := ingest.New(store.New(h.db), m, testkit.Logger(t))
		for range 2 {
			if err := in.Handle(ctx, msgs); err != nil {
				t.Fatalf("redelivered batch: %v", err)
			}
			if err := in.Handle(ctx, msgs[:1]); err != nil {
				t.Fatalf("redelivered message: %v", err)
			}
		}
		after, err := h.store.Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if after != before || after < int64(len(hs)) {
			t.Errorf("rows %d after redelivery, %d before (want equal, >= %d)", after, before, len(hs))
		}
		if got := h.statusOf(t, hs[0]); got != 3 {
			t.Errorf("reported status after redelivery = %d, want 3", got)
		}
		row, err := h.store.Get(context.Background(), hs[5])
		if err != nil || row.Pos != events.Position(seq, 5) || row.AccountID != account {
			t.Errorf("row %+v, %v; want position %d of account %d", row, err, events.Position(seq, 5), account)
		}
		if n := h.metric(t, "apitosms_status_hash_collisions_total", nil); n != 0 {
			t.Errorf("collisions = %v, want 0", n)
		}
	})
}

// TestHashCollision gives a message a hash another message holds, and its
// replacement hash too: it is stored under the replacement of the
// replacement, and reports reach it under that hash only.
func TestHashCollision(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h := start(t, b)
		taken := newHash()
		// The third event's item collides with the first event, and its first
		// replacement with the second event.
		pos := events.Position(3, 0)
		first := store.ReplacementHash(taken, pos)
		second := store.ReplacementHash(first, pos)
		if s := h.publish(t, items(1, taken)...); s != 1 {
			t.Fatalf("first sequence %d, want 1", s)
		}
		h.publish(t, items(2, first)...)
		h.publish(t, items(3, taken)...)
		// Within one event: the second item of a pair takes the replacement.
		dup := newHash()
		seq := h.publish(t, items(4, dup, dup)...)
		dupReplacement := store.ReplacementHash(dup, events.Position(seq, 1))
		h.waitStored(t, second, dupReplacement)

		for _, want := range []struct {
			hash    string
			pos     int64
			account int64
		}{
			{taken, events.Position(1, 0), 1},
			{first, events.Position(2, 0), 2},
			{second, pos, 3},
			{dup, events.Position(seq, 0), 4},
			{dupReplacement, events.Position(seq, 1), 4},
		} {
			row, err := h.store.Get(context.Background(), want.hash)
			if err != nil || row.Pos != want.pos || row.AccountID != want.account {
				t.Errorf("row of %s: %+v, %v; want position %d account %d", want.hash, row, err, want.pos, want.account)
			}
		}
		if n := h.metric(t, "apitosms_status_hash_collisions_total", nil); n != 2 {
			t.Errorf("collisions = %v, want 2", n)
		}
		rep := h.mustApply(t, events.ApplyRequest{AccountID: 3, Reports: []events.ApplyReport{
			{Index: 0, Hash: taken, Status: 2}, {Index: 1, Hash: second, Status: 2},
		}})
		if rep.Updated != 1 || len(rep.Errors) != 1 || rep.Errors[0] != (events.IndexError{Index: 0, Error: "Unknown hash"}) {
			t.Errorf("reply %+v, want the replacement updated and the taken hash unknown", rep)
		}
		if got := h.statusOf(t, taken); got != 0 {
			t.Errorf("the first owner's message changed to %d", got)
		}
	})
}
