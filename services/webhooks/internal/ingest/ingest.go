// Package ingest fans notify-stream events out to endpoints: each event
// becomes one undelivered row per matching enabled endpoint of its account,
// except that the events of one stream message for one "batch": true
// endpoint share rows of up to the batch size (chunks); all rows of a
// consumer batch in one transaction, acked only after the commit.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

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
	store     *store.Store
	metrics   *metrics.Metrics
	wake      func() // tells the local dispatcher that events are due
	batchSize int    // most events per chunk (the POST size of batch endpoints)
}

// New returns an ingester writing to st; batchSize bounds a chunk.
func New(st *store.Store, m *metrics.Metrics, wake func(), batchSize int) *Ingester {
	return &Ingester{store: st, metrics: m, wake: wake, batchSize: max(batchSize, 1)}
}

// chunkRow is one row carrying evs (events of one stream message for one
// batch endpoint, in order); its event id digests their ids, so the same
// chunk stored again (a redelivered stream message) is the same row.
func chunkRow(endpoint string, evs []events.Notification) store.Delivery {
	if len(evs) == 1 {
		n := evs[0]
		return store.Delivery{EndpointID: endpoint, EventID: n.ID, Type: n.Type, EventMs: store.Ms(n.At), Payload: string(Payload(n)), Events: 1}
	}
	// Each item is rendered straight into the chunk's buffer, sized once
	// (no per-event payload slice, no copies).
	size, idsLen := 0, len(evs)-1
	oldest := store.Ms(evs[0].At)
	for _, n := range evs {
		size += len(n.Data) + 2*len(n.ID) + len(n.Type) + 80
		idsLen += len(n.ID)
		oldest = min(oldest, store.Ms(n.At))
	}
	var b strings.Builder
	b.Grow(size)
	ids := make([]byte, 0, idsLen)
	for i, n := range evs {
		if i > 0 {
			b.WriteByte(',')
			ids = append(ids, ',')
		}
		ids = append(ids, n.ID...)
		b.WriteString(`{"id":`)
		writeQuoted(&b, n.ID)
		b.WriteByte(',')
		writeFields(&b, n)
	}
	sum := sha256.Sum256(ids)
	return store.Delivery{
		EndpointID: endpoint, EventID: "chunk_" + hex.EncodeToString(sum[:16]), Type: "batch", EventMs: oldest,
		Payload: b.String(), Events: len(evs), IDs: string(ids),
	}
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

// writeFields writes what Payload(n) holds after its opening brace
// (`"type":…,"timestamp":"…","data":…}`), where a batch item has its "id".
func writeFields(b *strings.Builder, n events.Notification) {
	b.WriteString(`"type":`)
	writeQuoted(b, n.Type)
	b.WriteString(`,"timestamp":"`)
	b.WriteString(timestamp.Format(n.At))
	b.WriteString(`","data":`)
	b.Write(n.Data)
	b.WriteByte('}')
}

// writeQuoted writes strconv.Quote(s) without allocating when s is plain
// printable ASCII (event ids and types are).
func writeQuoted(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b.WriteString(strconv.Quote(s))
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}

// Handle is a consumer.Handler. It is idempotent: a redelivered event finds
// its rows already there (unique endpoint and event) and adds none.
func (in *Ingester) Handle(ctx context.Context, batch []jetstream.Msg) error {
	perMsg := make([][]events.Notification, 0, len(batch))
	var accounts []int64
	for _, msg := range batch {
		// One Notification, or a NotificationBatch of them. Each Data is
		// a slice of the message (no copy), valid JSON: only a missing
		// "data" is left to refuse (json.Valid again per event cost a
		// quarter of the fan-out, by profile).
		list, err := events.DecodeNotifications(msg.Data())
		if err != nil {
			return fmt.Errorf("decode notification on %s: %w", msg.Subject(), err)
		}
		for _, n := range list {
			if n.ID == "" || n.Type == "" || len(n.Data) == 0 {
				return fmt.Errorf("notification on %s lacks an id, a type or valid data", msg.Subject())
			}
			if !slices.Contains(accounts, n.AccountID) {
				accounts = append(accounts, n.AccountID)
			}
		}
		perMsg = append(perMsg, list)
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
	enqueued := 0
	chunks := map[string][]events.Notification{} // batch endpoint -> its events of one stream message
	var order []string
	for _, notes := range perMsg {
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
				enqueued++
				if e.Batch {
					if _, ok := chunks[e.ID]; !ok {
						order = append(order, e.ID)
					}
					chunks[e.ID] = append(chunks[e.ID], n)
					continue
				}
				if payload == "" {
					payload = string(Payload(n))
				}
				rows = append(rows, store.Delivery{
					EndpointID: e.ID, EventID: n.ID, Type: n.Type, EventMs: store.Ms(n.At),
					Payload: payload, NextAttemptMs: 0, Events: 1, // due at once
				})
			}
		}
		for _, id := range order {
			evs := chunks[id]
			for i := 0; i < len(evs); i += in.batchSize {
				rows = append(rows, chunkRow(id, evs[i:min(i+in.batchSize, len(evs))]))
			}
			delete(chunks, id)
		}
		order = order[:0]
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
	}
	in.metrics.Enqueued.Add(float64(enqueued))
	if len(rows) > 0 && in.wake != nil {
		in.wake()
	}
	return nil
}
