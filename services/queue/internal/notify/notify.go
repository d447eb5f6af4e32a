// Package notify publishes the queue's message events (contract §10:
// message.sent, .failed, .cancelled, .expired) to the notify stream, for the
// webhooks service. Callers publish the events of changes already
// committed and only then acknowledge what caused them (a reported batch, a
// pending refund), so an event is published at least once for every change
// and never for a change that did not commit; the event ids name the facts
// (events.MessageNotification), so a repeat is dropped by the stream's
// duplicate window and by the receivers' webhook-id.
package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/hashid"
	"github.com/apitosms/apitosms/libs/timestamp"
	"github.com/apitosms/apitosms/services/queue/internal/metrics"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// Notifier publishes message events.
type Notifier struct {
	budget int // bytes of events per stream message
	js     jetstream.JetStream
	names  events.Names
	hashes *hashid.Codec
	subs   *Subscriptions // nil: every event is published
	counts *metrics.Tracking
}

// New returns a Notifier publishing on names' notify stream; hashes gives
// messages their public hashes; maxPayload is the connection's largest
// message.
func New(js jetstream.JetStream, names events.Names, hashes *hashid.Codec, maxPayload int64) *Notifier {
	return &Notifier{js: js, names: names, hashes: hashes, budget: int(min(maxPayload, 64<<20) / 2)}
}

// OnlySubscribed makes n publish only the events subs says some endpoint
// may want (see Subscriptions), and returns n.
// m (optional) counts the events published and skipped.
func (n *Notifier) OnlySubscribed(subs *Subscriptions, m *metrics.Tracking) *Notifier {
	n.subs, n.counts = subs, m
	if m != nil && subs != nil {
		subs.knownGauge = m.SubscriptionsKnown
	}
	return n
}

// count records published and skipped events.
func (n *Notifier) count(published, skipped int) {
	if n.counts != nil {
		n.counts.EventsPublished.Add(float64(published))
		n.counts.EventsSkipped.Add(float64(skipped))
	}
}

// Subscriptions returns what OnlySubscribed set (nil when every event is
// published).
func (n *Notifier) Subscriptions() *Subscriptions { return n.subs }

// Tells returns which accounts' message.sent and message.failed events
// Messages may publish, deciding on the announcements received so far (so
// on every one received before the reports the caller is about to apply);
// nil means every account's. With no Notifier it tells no account.
func (n *Notifier) Tells() func(account int64) bool {
	if n == nil {
		return func(int64) bool { return false }
	}
	if n.subs == nil {
		return nil
	}
	n.subs.Refresh()
	return func(account int64) bool {
		return n.subs.Wants(account, events.TypeMessageSent) || n.subs.Wants(account, events.TypeMessageFailed)
	}
}

// MayTell is what Tells' function answers for account, on the
// announcements already taken in (no refresh: cheap enough for every
// claim). The claims remember what these accounts' events will need
// (store.RememberHandOuts).
func (n *Notifier) MayTell(account int64) bool {
	if n == nil {
		return false
	}
	return n.subs == nil || n.subs.Wants(account, events.TypeMessageSent) || n.subs.Wants(account, events.TypeMessageFailed)
}

// Untold counts as skipped the events of n messages whose accounts Tells
// said no to (never handed to Messages).
func (n *Notifier) Untold(count int64) {
	if n != nil {
		n.count(0, int(count))
	}
}

// Messages publishes one event per message (its type from its status; a
// message with no event type, or whose account has no endpoint subscribed
// to the type, is skipped) and returns how many once the
// stream stored them all. Events go in stream messages of up to
// events.MaxNotificationsPerMessage and half the connection's max payload
// (a message's text may take kilobytes once escaped); each stream message's
// id is a digest of its event ids, so publishing the same events again is
// stored once, and different events never share an id. The events are
// rendered straight into the stream message's body (events.MessageBatch),
// in a buffer reused from call to call.
func (n *Notifier) Messages(ctx context.Context, msgs []store.Tracked) (int, error) {
	if n == nil || len(msgs) == 0 {
		return 0, nil
	}
	n.subs.Refresh()
	b := batches.Get().(*events.MessageBatch)
	defer batches.Put(b)
	b.Reset()
	published, skipped := 0, 0
	for i := range msgs {
		m := &msgs[i]
		if typ, ok := events.MessageType(m.Status); !ok || !n.subs.Wants(m.AccountID, typ) {
			skipped++
			continue
		}
		hash, t := n.hashes.Hash(m.Pos), Tracked(m)
		if b.Len() > 0 && (b.Len() >= events.MaxNotificationsPerMessage || b.Size()+events.MaxEventSize(hash, t) > n.budget) {
			if err := events.PublishMessageBatch(ctx, n.js, n.names, b); err != nil {
				return 0, err
			}
			published += b.Len()
			b.Reset()
		}
		if _, err := b.Add(m.AccountID, hash, t); err != nil {
			return 0, err
		}
	}
	if err := events.PublishMessageBatch(ctx, n.js, n.names, b); err != nil {
		return 0, err
	}
	published += b.Len()
	n.count(published, skipped)
	return published, nil
}

// batches are the MessageBatch buffers of Messages, reused (a reported
// batch's events take about 70 KB).
var batches = sync.Pool{New: func() any { return new(events.MessageBatch) }}

// publish stores chunk in one stream message whose id digests its event ids.
func (n *Notifier) publish(ctx context.Context, chunk []events.Notification) error {
	sum := sha256.New()
	for _, ev := range chunk {
		sum.Write([]byte(ev.ID))
		sum.Write([]byte{','})
	}
	return events.PublishNotifications(ctx, n.js, n.names, "msgs_"+hex.EncodeToString(sum.Sum(nil)[:16]), chunk)
}

// Tracked is m as the tracking payloads carry it.
func Tracked(m *store.Tracked) events.TrackedSMS {
	return events.TrackedSMS{
		Pos: m.Pos, Phone: m.Phone, Text: m.Text, Status: m.Status, QueuedAt: m.AcceptedAt,
		ClaimedAt: m.ClaimedAt, FinishedAt: m.FinishedAt, Device: m.Device, Attempts: m.Attempts,
		SendAt: m.SendAt, ValidUntil: m.ValidUntil, High: m.High,
	}
}

// Phones publishes phone.offline / phone.online events for evs (data
// {"device","lastSeenAt"}); each event's id names the phone's transition
// (account, device, transition number), so publishing it again is harmless.
func (n *Notifier) Phones(ctx context.Context, evs []store.PhoneEvent) error {
	if n == nil || len(evs) == 0 {
		return nil
	}
	n.subs.Refresh()
	list := make([]events.Notification, 0, len(evs))
	for _, e := range evs {
		typ := events.TypePhoneOffline
		if e.Online {
			typ = events.TypePhoneOnline
		}
		if !n.subs.Wants(e.AccountID, typ) {
			n.count(0, 1)
			continue
		}
		data, err := events.Marshal(events.PhoneEvent{Device: e.Device, LastSeenAt: timestamp.Time{Time: time.UnixMilli(e.SeenMs).UTC()}})
		if err != nil {
			return err
		}
		dev := sha256.Sum256([]byte(e.Device))
		list = append(list, events.Notification{
			ID:        fmt.Sprintf("%s.%d.%s.%d", typ, e.AccountID, hex.EncodeToString(dev[:8]), e.Seq),
			AccountID: e.AccountID, Type: typ, Data: data,
		})
	}
	if len(list) == 0 {
		return nil
	}
	if err := n.publish(ctx, list); err != nil {
		return err
	}
	n.count(len(list), 0)
	return nil
}
