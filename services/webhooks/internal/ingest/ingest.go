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
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/timestamp"
	"github.com/apitosms/apitosms/services/webhooks/internal/metrics"
	"github.com/apitosms/apitosms/services/webhooks/internal/store"
)

// txRows bounds the rows of one fan-out transaction.
const txRows = 5000

// Dispatcher is what the fan-out needs of the local dispatcher
// (deliver.Dispatcher).
type Dispatcher interface {
	// Wake tells it that events are due.
	Wake()
	// Offer reserves up to posts POSTs of an endpoint for rows about to be
	// stored claimed until the lease; Handoff sends them (or gives the
	// slots back) after the commit, one group per reserved slot.
	Offer(endpoint string, posts int) (int, time.Time)
	Handoff(ctx context.Context, ep store.Endpoint, groups [][]store.Delivery, lease time.Time)
}

// Ingester is the consumer handler of the notify stream.
type Ingester struct {
	store     *store.Store
	metrics   *metrics.Metrics
	disp      Dispatcher // nil: store only
	batchSize int        // most events per chunk (the POST size of batch endpoints)
}

// New returns an ingester writing to st and handing fresh rows to d;
// batchSize bounds a chunk.
func New(st *store.Store, m *metrics.Metrics, d Dispatcher, batchSize int) *Ingester {
	return &Ingester{store: st, metrics: m, disp: d, batchSize: max(batchSize, 1)}
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
	var ts stamps
	for i, n := range evs {
		if i > 0 {
			b.WriteByte(',')
			ids = append(ids, ',')
		}
		ids = append(ids, n.ID...)
		b.WriteString(`{"id":`)
		writeQuoted(&b, n.ID)
		b.WriteByte(',')
		writeFields(&b, n, &ts)
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

// stamps formats event times as timestamp.Format does, once per second:
// the events of one producer message mostly share their second, and the
// layout has no fraction (formatting was a third of a chunk's rendering, by
// profile).
type stamps struct {
	sec int64
	buf [40]byte
	out []byte
}

// format returns t as timestamp.Format(t), valid until the next call.
func (s *stamps) format(t time.Time) []byte {
	if sec := t.Unix(); s.out == nil || sec != s.sec {
		s.sec, s.out = sec, t.UTC().AppendFormat(s.buf[:0], timestamp.Layout)
	}
	return s.out
}

// writeFields writes what Payload(n) holds after its opening brace
// (`"type":…,"timestamp":"…","data":…}`), where a batch item has its "id".
func writeFields(b *strings.Builder, n events.Notification, ts *stamps) {
	b.WriteString(`"type":`)
	writeQuoted(b, n.Type)
	b.WriteString(`,"timestamp":"`)
	b.Write(ts.format(n.At))
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
	byID := make(map[string]store.Endpoint, len(endpoints))
	for _, e := range endpoints {
		byAccount[e.AccountID] = append(byAccount[e.AccountID], e)
		byID[e.ID] = e
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
		offers, due := in.offer(part, byID)
		err := in.store.Enqueue(ctx, part)
		for _, o := range offers {
			groups := make([][]store.Delivery, len(o.groups))
			for g, idx := range o.groups {
				for _, k := range idx {
					if err == nil && part[k].ID != 0 { // stored now: ours to send
						groups[g] = append(groups[g], part[k])
					}
				}
			}
			in.disp.Handoff(ctx, o.ep, groups, o.lease)
		}
		if err != nil {
			return err
		}
		if due && in.disp != nil {
			in.disp.Wake()
		}
	}
	in.metrics.Enqueued.Add(float64(enqueued))
	return nil
}

// handoff is the rows of one endpoint that are written claimed and sent
// from memory: indexes into the part, one group per reserved POST.
type handoff struct {
	ep     store.Endpoint
	groups [][]int
	lease  time.Time
}

// offer splits a part's rows, endpoint by endpoint and in order, into POSTs
// as a claim would (store.Group), reserves what POSTs the dispatcher has
// room for and marks their rows claimed (attempt 1, leased), so the commit
// that stores them also claims them. The other rows are stored due at once;
// due reports whether there are any.
func (in *Ingester) offer(part []store.Delivery, byID map[string]store.Endpoint) (out []handoff, due bool) {
	if in.disp == nil {
		return nil, len(part) > 0
	}
	var order []string
	at := map[string][]int{}
	for k, r := range part {
		if _, ok := at[r.EndpointID]; !ok {
			order = append(order, r.EndpointID)
		}
		at[r.EndpointID] = append(at[r.EndpointID], k)
	}
	for _, id := range order {
		idx := at[id]
		ep := byID[id]
		per := 1
		if ep.Batch {
			per = in.batchSize
		}
		// The rule of store.Group, on indexes.
		var groups [][]int
		start, cur := 0, 0
		for j, k := range idx {
			n := max(part[k].Events, 1)
			if cur > 0 && cur+n > per {
				groups = append(groups, idx[start:j])
				start, cur = j, 0
			}
			cur += n
		}
		groups = append(groups, idx[start:])
		n, lease := in.disp.Offer(id, len(groups))
		for _, g := range groups[:n] {
			for _, k := range g {
				part[k].Attempts, part[k].NextAttemptMs = 1, store.Ms(lease)
			}
		}
		if n > 0 {
			out = append(out, handoff{ep: ep, groups: groups[:n], lease: lease})
		}
		due = due || n < len(groups)
	}
	return out, due
}
