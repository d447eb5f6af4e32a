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
		hs := append(h.accept(t, account, 100), h.accept(t, account, 200)...)
		h.waitStored(t, hs...)
		h.mustApply(t, events.ApplyRequest{AccountID: account, Reports: []events.ApplyReport{{Index: 0, Pos: hs[0], Status: 3}}})
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
		m := metrics.New(reg)
		in := ingest.New(store.New(h.db), m)
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
		if err != nil || row.Pos != hs[5] || row.AccountID != account {
			t.Errorf("row %+v, %v; want position %d of account %d", row, err, hs[5], account)
		}
	})
}

// TestIngestWindowSizes records windows of every size class of SQLite's
// prepared inserts (256, 16 and one rows, and their mixes), each window
// overlapping a row already stored: every row is stored once, with its
// account.
func TestIngestWindowSizes(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		db := b.DB(t, store.Service)
		if err := store.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		st := store.New(db)
		var all []store.Row
		next := uint64(1)
		for _, n := range []int{1, 3, 16, 17, 255, 256, 291, 600} {
			var rows []store.Row
			if len(all) > 0 { // redelivered: the previous window's last row
				rows = append(rows, all[len(all)-1])
			}
			for i := range n {
				r := store.Row{Pos: events.Position(next, i%1000), AccountID: int64(n*1000 + i)}
				rows = append(rows, r)
				all = append(all, r)
			}
			next++
			if err := st.Ingest(ctx, rows); err != nil {
				t.Fatalf("window of %d: %v", len(rows), err)
			}
		}
		if n, err := st.Count(ctx); err != nil || n != int64(len(all)) {
			t.Fatalf("%d rows stored (%v), want %d", n, err, len(all))
		}
		for _, r := range all {
			d, err := st.Get(ctx, r.Pos)
			if err != nil || d.AccountID != r.AccountID || d.Status != 0 {
				t.Fatalf("row %d: %+v, %v; want account %d, status 0", r.Pos, d, err, r.AccountID)
			}
		}
	})
}
