// Package ingest holds the queue's stream handlers: ingesting accepted
// batches into the messages table and applying delivery reports.
package ingest

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/services/queue/internal/metrics"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// Accepted stores AcceptedBatch events. It reuses its buffers, so one
// Accepted serves one consumer (calls must not overlap).
type Accepted struct {
	ins   *store.Inserter
	m     *metrics.Metrics
	log   *slog.Logger
	event events.AcceptedBatch
	rows  []store.NewMessage
}

// NewAccepted returns the handler storing into st.
func NewAccepted(st *store.Store, m *metrics.Metrics, log *slog.Logger) *Accepted {
	return &Accepted{ins: st.NewInserter(), m: m, log: log}
}

// Handle stores every item of every message of batch in one transaction;
// item i of the message at stream sequence S gets position
// events.Position(S, i). It is idempotent. A malformed message fails the
// batch (the consumer runner then isolates and dead-letters it).
func (a *Accepted) Handle(ctx context.Context, batch []jetstream.Msg) error {
	a.rows = a.rows[:0]
	for _, msg := range batch {
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("accepted message metadata: %w", err)
		}
		if err := a.decode(meta.Sequence.Stream, msg.Data()); err != nil {
			return fmt.Errorf("accepted message at sequence %d: %w", meta.Sequence.Stream, err)
		}
	}
	inserted, err := a.ins.Insert(ctx, a.rows)
	clear(a.rows) // drop references to the texts
	if err != nil {
		return err
	}
	a.m.Ingested.Add(float64(inserted))
	return nil
}

// Close releases the handler's prepared statements; call it once the
// consumer stopped.
func (a *Accepted) Close() error { return a.ins.Close() }

// decode appends the rows of one AcceptedBatch at stream sequence seq.
func (a *Accepted) decode(seq uint64, data []byte) error {
	a.event.Items = a.event.Items[:0]
	if err := events.Unmarshal(data, &a.event); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if len(a.event.Items) > events.MaxItemsPerEvent {
		return fmt.Errorf("%d items, more than %d", len(a.event.Items), events.MaxItemsPerEvent)
	}
	for i, it := range a.event.Items {
		if it.AccountID <= 0 {
			return fmt.Errorf("item %d: missing account", i)
		}
		a.rows = append(a.rows, store.NewMessage{
			Pos:        events.Position(seq, i),
			AccountID:  it.AccountID,
			Phone:      it.Phone,
			Text:       it.Text,
			AcceptedAt: a.event.AcceptedAt,
			SendAt:     it.SendAt,
			ValidUntil: it.ValidUntil,
			High:       it.High,
		})
	}
	return nil
}
