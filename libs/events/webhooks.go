package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The notify stream carries the events merchants can receive as webhooks
// (contract §10). Producers publish a Notification with PublishNotification;
// the webhooks service fans each one out to the matching endpoints.

// DurableWebhooksFanout is the webhooks service's consumer of the notify
// stream. Never rename it.
const DurableWebhooksFanout = "webhooks-fanout"

// GroupWebhooks is the queue group of the webhooks service's handlers.
const GroupWebhooks = "webhooks"

// NotifyRetention is how long the notify stream keeps an event: the webhooks
// service normally stores it within milliseconds; this is the slack for a
// webhooks service that is down.
const NotifyRetention = 7 * 24 * time.Hour

// Notification event types (contract §10).
const (
	TypeMessageSent      = "message.sent"
	TypeMessageFailed    = "message.failed"
	TypeMessageExpired   = "message.expired"
	TypeMessageCancelled = "message.cancelled"
	TypeMessageInitiated = "message.initiated"
	TypeQuotaWarning     = "quota.warning"
	TypeQuotaExhausted   = "quota.exhausted"
	TypePhoneOffline     = "phone.offline"
	TypePhoneOnline      = "phone.online"
	TypeWebhookTest      = "webhook.test"
)

// NotificationTypes lists every event type an endpoint may subscribe to.
var NotificationTypes = []string{
	TypeMessageSent, TypeMessageFailed, TypeMessageExpired, TypeMessageCancelled, TypeMessageInitiated,
	TypeQuotaWarning, TypeQuotaExhausted, TypePhoneOffline, TypePhoneOnline, TypeWebhookTest,
}

// Notification is one event for an account's webhooks.
type Notification struct {
	// ID identifies the event: it is the stream's Nats-Msg-Id (a publish
	// retried within the duplicate window is stored once) and the
	// webhook-id merchants see. A producer derives it from what happened
	// (e.g. "msg_<hash>_sent"), so that re-publishing the same fact after a
	// crash names the same event; NewNotificationID is for one-off events.
	ID        string          `json:"id"`
	AccountID int64           `json:"a"`
	Type      string          `json:"type"`
	At        time.Time       `json:"at"`
	Data      json.RawMessage `json:"data"` // the contract's data object for Type
	// Endpoint, when set, restricts delivery to that one endpoint of the
	// account (webhook.test); otherwise every enabled endpoint subscribed
	// to Type receives it.
	Endpoint string `json:"endpoint,omitempty"`
}

// NotificationBatch carries several notifications in one stream message
// (one fsync), for producers that learn of many facts at once (a status
// report of 200 messages). On the stream a message holds either one
// Notification or a NotificationBatch; the consumer accepts both.
type NotificationBatch struct {
	Batch []Notification `json:"batch"`
}

// MaxNotificationsPerMessage bounds one NotificationBatch message.
const MaxNotificationsPerMessage = 1000

// NewNotificationID returns a random event id ("evt_" + 32 hex characters).
func NewNotificationID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "evt_" + hex.EncodeToString(b[:])
}

// NotifyStream holds Notifications (file storage, limits retention,
// NotifyRetention).
func (n Names) NotifyStream() string { return n.stream + "_NOTIFY" }

// NotifySubject is the subject of a Notification of type typ: the type's
// dots become underscores ("<ns>.notify.v1.message_sent").
func (n Names) NotifySubject(typ string) string {
	return n.ns + ".notify.v1." + strings.ReplaceAll(typ, ".", "_")
}

// NotifySubjects is the wildcard of every notification subject.
func (n Names) NotifySubjects() string { return n.ns + ".notify.v1.*" }

// PublishNotification stores n on the notify stream and returns once the
// stream acknowledged it (on disk). It fills At when zero.
func PublishNotification(ctx context.Context, js jetstream.JetStream, names Names, n Notification) error {
	if n.ID == "" || n.Type == "" || n.AccountID == 0 {
		return errors.New("notification: id, type and account required")
	}
	if n.At.IsZero() {
		n.At = time.Now()
	}
	n.At = n.At.UTC()
	if len(n.Data) == 0 {
		n.Data = json.RawMessage("{}")
	}
	body, err := Marshal(n)
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	if _, err := js.Publish(ctx, names.NotifySubject(n.Type), body, jetstream.WithMsgID(n.ID)); err != nil {
		return fmt.Errorf("publish notification: %w", err)
	}
	return nil
}

// PublishNotifications stores ns on the notify stream in messages of up to
// MaxNotificationsPerMessage, with Nats-Msg-Id batchID/<chunk>: a producer
// that retries with the same batchID (and the same ns) is stored once.
// Each notification keeps its own ID (the webhook-id). It fills At when zero.
// Each Data must come from Marshal (compact, valid JSON): it is written
// into the message as is, not checked again.
func PublishNotifications(ctx context.Context, js jetstream.JetStream, names Names, batchID string, ns []Notification) error {
	if batchID == "" {
		return errors.New("notifications: batch id required")
	}
	for i := range ns {
		n := &ns[i]
		if n.ID == "" || n.Type == "" || n.AccountID == 0 {
			return errors.New("notification: id, type and account required")
		}
		if n.At.IsZero() {
			n.At = time.Now()
		}
		n.At = n.At.UTC()
		if len(n.Data) == 0 {
			n.Data = json.RawMessage("{}")
		}
	}
	for chunk, i := 0, 0; i < len(ns); chunk, i = chunk+1, i+MaxNotificationsPerMessage {
		body, err := encodeNotificationBatch(ns[i:min(i+MaxNotificationsPerMessage, len(ns))])
		if err != nil {
			return fmt.Errorf("encode notifications: %w", err)
		}
		if _, err := js.Publish(ctx, names.NotifyBatchSubject(), body, jetstream.WithMsgID(fmt.Sprintf("%s/%d", batchID, chunk))); err != nil {
			return fmt.Errorf("publish notifications: %w", err)
		}
	}
	return nil
}

// encodeNotificationBatch is the body of a NotificationBatch message of ns,
// byte for byte what Marshal(NotificationBatch{Batch: ns}) gives for events
// whose Data came from Marshal (compact, valid JSON, HTML characters
// escaped). Each event's Data is written as is: encoding the batch with
// Marshal would check and compact every event's data again, a second
// encoding of each event (see docs/benchmarks.md, issue 10).
func encodeNotificationBatch(ns []Notification) ([]byte, error) {
	size := len(`{"batch":[]}`)
	for i := range ns {
		size += len(ns[i].ID) + len(ns[i].Type) + len(ns[i].Data) + len(ns[i].Endpoint) + 96
	}
	b := make([]byte, 0, size)
	b = append(b, `{"batch":[`...)
	for i := range ns {
		n := &ns[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendJSONString(b, n.ID)
		b = append(b, `,"a":`...)
		b = strconv.AppendInt(b, n.AccountID, 10)
		b = append(b, `,"type":`...)
		b = appendJSONString(b, n.Type)
		b = append(b, `,"at":`...)
		if y := n.At.Year(); y < 0 || y > 9999 {
			return nil, fmt.Errorf("notification %s: time %v out of range", n.ID, n.At)
		}
		b = append(b, '"')
		b = n.At.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","data":`...)
		if len(n.Data) == 0 {
			b = append(b, "null"...)
		} else {
			b = append(b, n.Data...)
		}
		if n.Endpoint != "" {
			b = append(b, `,"endpoint":`...)
			b = appendJSONString(b, n.Endpoint)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// NotifyBatchSubject is the subject of NotificationBatch messages.
func (n Names) NotifyBatchSubject() string { return n.ns + ".notify.v1.batch" }

// Webhooks RPC subjects, answered by the webhooks service (group webhooks).
// Every request carries the account ingress authenticated.

// WebhooksCreate: WebhookCreateRequest -> Webhook (with its secret).
func (n Names) WebhooksCreate() string { return n.rpc("webhooks.v1.create") }

// WebhooksList: WebhookListRequest -> WebhookList.
func (n Names) WebhooksList() string { return n.rpc("webhooks.v1.list") }

// WebhooksGet: WebhookRef -> Webhook.
func (n Names) WebhooksGet() string { return n.rpc("webhooks.v1.get") }

// WebhooksUpdate: WebhookUpdateRequest -> Webhook.
func (n Names) WebhooksUpdate() string { return n.rpc("webhooks.v1.update") }

// WebhooksDelete: WebhookRef -> WebhookDeleted.
func (n Names) WebhooksDelete() string { return n.rpc("webhooks.v1.delete") }

// WebhooksRotate: WebhookRef -> WebhookSecret.
func (n Names) WebhooksRotate() string { return n.rpc("webhooks.v1.rotate") }

// WebhooksTest: WebhookRef -> WebhookTestReply.
func (n Names) WebhooksTest() string { return n.rpc("webhooks.v1.test") }

// WebhooksDeliveries: WebhookDeliveriesRequest -> WebhookDeliveries.
func (n Names) WebhooksDeliveries() string { return n.rpc("webhooks.v1.deliveries") }

// Webhook is an endpoint as the contract shows it. Secret is set only in the
// answer to a creation.
type Webhook struct {
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	Events         []string `json:"events"`
	Batch          bool     `json:"batch"`
	Enabled        bool     `json:"enabled"`
	Description    string   `json:"description"`
	Secret         string   `json:"secret,omitempty"`
	CreatedAt      string   `json:"createdAt"`
	DisabledReason string   `json:"disabledReason,omitempty"` // "gone" (410) or "failing" (3 days)
}

// WebhookCreateRequest creates an endpoint.
type WebhookCreateRequest struct {
	AccountID   int64    `json:"accountId"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Batch       bool     `json:"batch"`
	Description string   `json:"description"`
}

// WebhookListRequest lists an account's endpoints.
type WebhookListRequest struct {
	AccountID int64 `json:"accountId"`
}

// WebhookList is every endpoint of an account, oldest first.
type WebhookList struct {
	Webhooks []Webhook `json:"webhooks"`
}

// WebhookRef names one endpoint of an account.
type WebhookRef struct {
	AccountID int64  `json:"accountId"`
	ID        string `json:"id"`
}

// WebhookUpdateRequest changes the fields that are set.
type WebhookUpdateRequest struct {
	AccountID   int64     `json:"accountId"`
	ID          string    `json:"id"`
	URL         *string   `json:"url,omitempty"`
	Events      *[]string `json:"events,omitempty"`
	Batch       *bool     `json:"batch,omitempty"`
	Enabled     *bool     `json:"enabled,omitempty"`
	Description *string   `json:"description,omitempty"`
}

// WebhookDeleted answers a deletion.
type WebhookDeleted struct {
	Deleted bool `json:"deleted"`
}

// WebhookSecret is a freshly rotated secret.
type WebhookSecret struct {
	Secret string `json:"secret"`
}

// WebhookTestReply names the webhook.test event sent.
type WebhookTestReply struct {
	EventID string `json:"eventId"`
}

// WebhookDeliveriesRequest pages through an endpoint's delivery log.
type WebhookDeliveriesRequest struct {
	AccountID int64  `json:"accountId"`
	ID        string `json:"id"`
	Limit     int    `json:"limit"`
	Cursor    string `json:"cursor"`
}

// WebhookDeliveries is one page of the log, newest first.
type WebhookDeliveries struct {
	Deliveries []WebhookAttempt `json:"deliveries"`
	NextCursor *string          `json:"nextCursor"`
}

// WebhookAttempt is one POST to an endpoint.
type WebhookAttempt struct {
	ID             string  `json:"id"`
	EventID        string  `json:"eventId"` // the webhook-id sent: an event's id, or a batch's
	Type           string  `json:"type"`    // the event type, or "batch"
	Events         int     `json:"events"`  // events carried (1, or a batch's size)
	Attempt        int     `json:"attempt"`
	Status         string  `json:"status"` // "delivered" or "failed"
	ResponseStatus *int    `json:"responseStatus"`
	DurationMs     int64   `json:"durationMs"`
	Error          *string `json:"error"`
	At             string  `json:"at"`
}

// Subscriptions: the producers of message events (the queue) publish an
// event only for accounts with an enabled endpoint subscribed to its type.
// They load every account's subscribed types with WebhooksSubscriptions and
// learn of each change at once from WebhooksChanged.

// WebhooksSubscriptions: SubscriptionsRequest -> SubscriptionsPage.
func (n Names) WebhooksSubscriptions() string { return n.rpc("webhooks.v1.subscriptions") }

// WebhooksChanged is the core-NATS subject (no stream, every subscriber
// gets each message) on which the webhooks service announces, after every
// change of an account's endpoints is committed and before the change's
// request is answered, the account's subscribed types (a
// WebhookSubscription).
func (n Names) WebhooksChanged() string { return n.ns + ".webhooks.v1.changed" }

// WebhookSubscription is the event types an account's enabled endpoints
// receive, the default set ("events": []) spelled out.
type WebhookSubscription struct {
	AccountID int64    `json:"accountId"`
	Types     []string `json:"types"`
}

// SubscriptionsRequest asks for the subscriptions of the accounts after
// After (an account id), up to Limit accounts.
type SubscriptionsRequest struct {
	After int64 `json:"after"`
	Limit int   `json:"limit"`
}

// SubscriptionsPage is one page of subscriptions, by account id; More says
// whether accounts after the last one may have some.
type SubscriptionsPage struct {
	Accounts []WebhookSubscription `json:"accounts"`
	More     bool                  `json:"more"`
}

// DefaultSubscribed reports whether an endpoint subscribed to list
// receives typ: an empty list means every type but message.initiated.
func DefaultSubscribed(list []string, typ string) bool {
	if len(list) == 0 {
		return typ != TypeMessageInitiated
	}
	for _, t := range list {
		if t == typ {
			return true
		}
	}
	return false
}
