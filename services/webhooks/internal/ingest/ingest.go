// Package ingest fans notify-stream events out to endpoints: each event
// becomes one undelivered row per matching enabled endpoint of its account,
// all rows of a batch in one transaction, acked only after the commit.
package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/timestamp"
	"github.com/apitosms/apitosms/services/webhooks/internal/metrics"
	"github.com/apitosms/apitosms/services/webhooks/internal/store"
)

// txRows bounds the rows of one fan-out transaction.
const txRows = 5000

// Ingester is the consumer handler of the notify stream.
type Ingester struct {
	store   *store.Store
	metrics *metrics.Metrics
	wake    func() // tells the local dispatcher that events are due
}

// New returns an ingester writing to st.
func New(st *store.Store, m *metrics.Metrics, wake func()) *Ingester {
	return &Ingester{store: st, metrics: m, wake: wake}
}

// Subscribed reports whether an endpoint subscribed to events receives typ:
// an empty list means every type but message.initiated.
func Subscribed(list []string, typ string) bool { return events.DefaultSubscribed(list, typ) }

// Payload is the body of a single delivery: {"type","timestamp","data"}.
func Payload(n events.Notification) []byte {
	b := make([]byte, 0, 64+len(n.Data))
	b = append(b, `{"type":`...)
	b = strconv.AppendQuote(b, n.Type)
	b = append(b, `,"timestamp":"`...)
	b = append(b, timestamp.Format(n.At)...)
	b = append(b, `","data":`...)
	b = append(b, n.Data...)
	return append(b, '}')
}

// Handle is a consumer.Handler. It is idempotent: a redelivered event finds
// its rows already there (unique endpoint and event) and adds none.
func (in *Ingester) Handle(ctx context.Context, batch []jetstream.Msg) error {
	notes := make([]events.Notification, 0, len(batch))
	var accounts []int64
	for _, msg := range batch {
		// One Notification, or a NotificationBatch of them.
		var w struct {
			events.Notification
			Batch []events.Notification `json:"batch"`
		}
		if err := events.Unmarshal(msg.Data(), &w); err != nil {
			return fmt.Errorf("decode notification on %s: %w", msg.Subject(), err)
		}
		list := w.Batch
		if len(list) == 0 {
			list = []events.Notification{w.Notification}
		}
		for _, n := range list {
			if n.ID == "" || n.Type == "" || !json.Valid(n.Data) {
				return fmt.Errorf("notification on %s lacks an id, a type or valid data", msg.Subject())
			}
			notes = append(notes, n)
			if !slices.Contains(accounts, n.AccountID) {
				accounts = append(accounts, n.AccountID)
			}
		}
	}
	endpoints, err := in.store.EnabledEndpoints(ctx, accounts)
	if err != nil {
		return err
	}
	byAccount := make(map[int64][]store.Endpoint, len(accounts))
	for _, e := range endpoints {
		byAccount[e.AccountID] = append(byAccount[e.AccountID], e)
	}
	var rows []store.Delivery
	for _, n := range notes {
		var payload string
		for _, e := range byAccount[n.AccountID] {
			if n.Endpoint != "" {
				if n.Endpoint != e.ID {
					continue
				}
			} else if !Subscribed(e.EventList(), n.Type) {
				continue
			}
			if payload == "" {
				payload = string(Payload(n))
			}
			ms := store.Ms(n.At)
			rows = append(rows, store.Delivery{
				EndpointID: e.ID, EventID: n.ID, Type: n.Type, EventMs: ms,
				Payload: payload, NextAttemptMs: 0, // due at once
			})
		}
	}
	// Large batches commit in parts (each idempotent), telling the server
	// between parts that the messages are still being worked on, so their
	// ack wait never runs out under a slow database.
	for i := 0; i < len(rows); i += txRows {
		if i > 0 {
			for _, msg := range batch {
				_ = msg.InProgress()
			}
		}
		part := rows[i:min(i+txRows, len(rows))]
		if err := in.store.Enqueue(ctx, part); err != nil {
			return err
		}
		in.metrics.Enqueued.Add(float64(len(part)))
	}
	if len(rows) > 0 && in.wake != nil {
		in.wake()
	}
	return nil
}
