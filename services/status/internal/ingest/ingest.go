// Package ingest records every accepted SMS in the deliveries table, from the
// accepted stream, so that phones' reports find them.
package ingest

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/services/status/internal/metrics"
	"github.com/apitosms/apitosms/services/status/internal/store"
)

// accounts is the part of an AcceptedBatch this service keeps: whose each
// message is. Decoding only that skips copying every phone number and text.
type accounts struct {
	Items []struct {
		AccountID int64 `json:"a"`
	} `json:"items"`
}

// Ingester turns batches of AcceptedBatch stream messages into rows.
type Ingester struct {
	store   *store.Store
	metrics *metrics.Metrics
}

// New returns an ingester writing to st.
func New(st *store.Store, m *metrics.Metrics) *Ingester {
	return &Ingester{store: st, metrics: m}
}

// Handle is a consumer.Handler: it records every item of every message in
// one transaction and returns nil once they are durable. Item i of the
// message at stream sequence S gets position events.Position(S, i). It is
// idempotent, so redelivered messages are harmless. A message that cannot be
// decoded fails the batch (the consumer runner then isolates and, in the
// end, dead-letters it).
func (in *Ingester) Handle(ctx context.Context, batch []jetstream.Msg) error {
	var rows []store.Row
	for _, msg := range batch {
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("accepted message metadata: %w", err)
		}
		var ev accounts
		if err := events.Unmarshal(msg.Data(), &ev); err != nil {
			return fmt.Errorf("decode accepted batch at sequence %d: %w", meta.Sequence.Stream, err)
		}
		if len(ev.Items) > events.MaxItemsPerEvent {
			return fmt.Errorf("accepted batch at sequence %d has %d items (max %d)",
				meta.Sequence.Stream, len(ev.Items), events.MaxItemsPerEvent)
		}
		if rows == nil {
			rows = make([]store.Row, 0, len(batch)*len(ev.Items))
		}
		for i, it := range ev.Items {
			rows = append(rows, store.Row{Pos: events.Position(meta.Sequence.Stream, i), AccountID: it.AccountID})
		}
	}
	if err := in.store.Ingest(ctx, rows); err != nil {
		return err
	}
	in.metrics.Ingested.Add(float64(len(rows)))
	return nil
}
