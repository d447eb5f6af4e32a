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

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/hashid"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// Notifier publishes message events.
type Notifier struct {
	js     jetstream.JetStream
	names  events.Names
	hashes *hashid.Codec
}

// New returns a Notifier publishing on names' notify stream; hashes gives
// messages their public hashes.
func New(js jetstream.JetStream, names events.Names, hashes *hashid.Codec) *Notifier {
	return &Notifier{js: js, names: names, hashes: hashes}
}

// Messages publishes one event per message (its type from its status; a
// message with no event type is skipped), in stream messages of up to
// events.MaxNotificationsPerMessage, and returns once the stream stored
// them all. The batch id is a digest of the event ids, so publishing the
// same events again is stored once, and different events never share an id.
func (n *Notifier) Messages(ctx context.Context, msgs []store.Tracked) (int, error) {
	if n == nil || len(msgs) == 0 {
		return 0, nil
	}
	list := make([]events.Notification, 0, len(msgs))
	sum := sha256.New()
	for i := range msgs {
		m := &msgs[i]
		ev, ok := events.MessageNotification(m.AccountID, n.hashes.Hash(m.Pos), Tracked(m))
		if !ok {
			continue
		}
		list = append(list, ev)
		sum.Write([]byte(ev.ID))
		sum.Write([]byte{','})
	}
	if len(list) == 0 {
		return 0, nil
	}
	id := "msgs_" + hex.EncodeToString(sum.Sum(nil)[:16])
	if err := events.PublishNotifications(ctx, n.js, n.names, id, list); err != nil {
		return 0, err
	}
	return len(list), nil
}

// Tracked is m as the tracking payloads carry it.
func Tracked(m *store.Tracked) events.TrackedSMS {
	return events.TrackedSMS{
		Pos: m.Pos, Phone: m.Phone, Text: m.Text, Status: m.Status, QueuedAt: m.AcceptedAt,
		ClaimedAt: m.ClaimedAt, FinishedAt: m.FinishedAt, Device: m.Device, Attempts: m.Attempts,
	}
}
