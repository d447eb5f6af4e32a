package events

import (
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Store connections (contract §13). The stores service answers the stores
// and opt-outs requests ingress forwards (group stores), receives the shops'
// signed webhooks itself (/hooks/...), stores each verified delivery in the
// store-hooks stream and turns it into SMS from its durable consumer.

// DurableStoresIngest is the stores service's consumer of the store-hooks
// stream. Never rename it.
const DurableStoresIngest = "stores-ingest"

// GroupStores is the queue group of the stores service's handlers.
const GroupStores = "stores"

// StoreHooksStream holds every verified shop delivery (StoreHook), file
// storage, interest retention: a delivery stays until the stores service
// processed it. A delivery's Nats-Msg-Id is StoreHookMsgID, so a platform
// retry arriving within the stream's duplicate window is stored once; the
// service's own table dedupes for 24 hours.
func (n Names) StoreHooksStream() string { return n.stream + "_STORE_HOOKS" }

// StoreHooksSubject is the subject of StoreHook events.
func (n Names) StoreHooksSubject() string { return n.ns + ".stores.v1.hook" }

// StoreHookMsgID is the Nats-Msg-Id of a delivery: the store and the
// platform's delivery id.
func StoreHookMsgID(store, delivery string) string { return "hook/" + store + "/" + delivery }

// StoreHook is one verified delivery from a shop. On the stream the body
// is the message's data, byte for byte as the shop sent it (it may not even
// be JSON), and the rest travels in headers.
type StoreHook struct {
	StoreID    string    `json:"store"`
	Platform   string    `json:"platform"` // shopify or woocommerce
	Topic      string    `json:"topic"`    // orders/create, order.updated, ...
	DeliveryID string    `json:"delivery"` // the platform's delivery id
	ReceivedAt time.Time `json:"at"`       // when the receiving endpoint verified it
	Body       []byte    `json:"body"`
}

// StoreHookBatch carries several deliveries received at the same moment in
// one stream message (one fsync instead of one each): the receiving
// endpoint's group commit. On the stream a message holds either one
// StoreHook (headers and raw body) or a StoreHookBatch (JSON, header
// Apitosms-Batch); the consumer accepts both.
type StoreHookBatch struct {
	Hooks []StoreHook `json:"hooks"`
}

// StoreHookBatchMsg returns the stream message of several deliveries; id
// is its Nats-Msg-Id (fresh per batch: a retried publish is stored once).
func (n Names) StoreHookBatchMsg(id string, hooks []StoreHook) (*nats.Msg, error) {
	data, err := Marshal(StoreHookBatch{Hooks: hooks})
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(n.StoreHooksSubject())
	m.Data = data
	m.Header.Set(hookBatch, "1")
	m.Header.Set(jetstream.MsgIDHeader, "hooks/"+id)
	return m, nil
}

// Headers of a StoreHook message.
const (
	hookStore    = "Apitosms-Store"
	hookPlatform = "Apitosms-Platform"
	hookTopic    = "Apitosms-Topic"
	hookDelivery = "Apitosms-Delivery"
	hookAt       = "Apitosms-At"
	hookBatch    = "Apitosms-Batch"
)

// StoreHookMsg returns the stream message of h, with its Nats-Msg-Id.
func (n Names) StoreHookMsg(h StoreHook) *nats.Msg {
	m := nats.NewMsg(n.StoreHooksSubject())
	m.Data = h.Body
	m.Header.Set(hookStore, h.StoreID)
	m.Header.Set(hookPlatform, h.Platform)
	m.Header.Set(hookTopic, h.Topic)
	m.Header.Set(hookDelivery, h.DeliveryID)
	m.Header.Set(hookAt, h.ReceivedAt.UTC().Format(time.RFC3339Nano))
	m.Header.Set(jetstream.MsgIDHeader, StoreHookMsgID(h.StoreID, h.DeliveryID))
	return m
}

// ParseStoreHooks reads a stream message: one StoreHook or a batch.
func ParseStoreHooks(m jetstream.Msg) ([]StoreHook, error) {
	if m.Headers().Get(hookBatch) != "" {
		var b StoreHookBatch
		if err := Unmarshal(m.Data(), &b); err != nil {
			return nil, err
		}
		return b.Hooks, nil
	}
	h, err := ParseStoreHook(m)
	if err != nil {
		return nil, err
	}
	return []StoreHook{h}, nil
}

// ParseStoreHook reads a StoreHook message.
func ParseStoreHook(m jetstream.Msg) (StoreHook, error) {
	hd := m.Headers()
	h := StoreHook{StoreID: hd.Get(hookStore), Platform: hd.Get(hookPlatform), Topic: hd.Get(hookTopic),
		DeliveryID: hd.Get(hookDelivery), Body: m.Data()}
	if h.StoreID == "" || h.DeliveryID == "" {
		return h, errors.New("store hook without store or delivery id")
	}
	h.ReceivedAt, _ = time.Parse(time.RFC3339Nano, hd.Get(hookAt))
	return h, nil
}

// Stores RPC subjects, answered by the stores service (group stores). Every
// request is a StoreRequest; every reply is the contract's JSON body, which
// ingress answers as is.
func (n Names) StoresCreate() string   { return n.rpc("stores.v1.create") }
func (n Names) StoresList() string     { return n.rpc("stores.v1.list") }
func (n Names) StoresGet() string      { return n.rpc("stores.v1.get") }
func (n Names) StoresUpdate() string   { return n.rpc("stores.v1.update") }
func (n Names) StoresDelete() string   { return n.rpc("stores.v1.delete") }
func (n Names) StoresPreview() string  { return n.rpc("stores.v1.preview") }
func (n Names) StoresLog() string      { return n.rpc("stores.v1.log") }
func (n Names) OptOutsList() string    { return n.rpc("stores.v1.optouts-list") }
func (n Names) OptOutsAdd() string     { return n.rpc("stores.v1.optouts-add") }
func (n Names) OptOutsRemove() string  { return n.rpc("stores.v1.optouts-remove") }
func (n Names) StoresSubjects() string { return n.rpc("stores.v1.>") }

// StoreRequest is one stores or opt-outs request of an authenticated
// account. Body is the request body as sent (validated by the stores
// service); ContentType tells a CSV opt-out import from JSON.
type StoreRequest struct {
	AccountID   int64  `json:"accountId"`
	ID          string `json:"id,omitempty"`
	Body        []byte `json:"body,omitempty"`
	ContentType string `json:"contentType,omitempty"`
	Limit       int    `json:"limit,omitempty"`
	Cursor      string `json:"cursor,omitempty"`
}

// Replies of the stores RPCs: the contract's JSON bodies (§13), declared
// once for the stores service that writes them and the console that reads
// them.

// StoreTemplateKeys lists every template key, in the contract's order.
var StoreTemplateKeys = []string{"order_created", "order_paid", "order_shipped", "order_cancelled",
	"order_refunded", "order_on_hold", "admin_new_order"}

// StoreTemplate is one event's SMS template.
type StoreTemplate struct {
	Enabled bool   `json:"enabled"`
	Text    string `json:"text"`
}

// StoreView is a store (the reply of .get, .update; of .create with
// Secret, the one answer that shows it).
type StoreView struct {
	ID             string                   `json:"id"`
	Platform       string                   `json:"platform"`
	Name           string                   `json:"name"`
	WebhookURL     string                   `json:"webhookUrl"`
	DefaultCountry string                   `json:"defaultCountry"`
	AdminPhones    []string                 `json:"adminPhones"`
	Templates      map[string]StoreTemplate `json:"templates"`
	PhoneFrom      []string                 `json:"phoneFrom"`
	CreatedAt      string                   `json:"createdAt"`
	UpdatedAt      string                   `json:"updatedAt"`
	Secret         string                   `json:"secret,omitempty"`
}

// StoreList is the reply of .list: the account's stores, oldest first.
type StoreList struct {
	Stores []StoreView `json:"stores"`
}

// StoreLogEntry is one decision of a store's log; absent values are null.
type StoreLogEntry struct {
	ID          string  `json:"id"`
	At          string  `json:"at"`
	DeliveryID  string  `json:"deliveryId"`
	Topic       string  `json:"topic"`
	Event       *string `json:"event"`
	OrderNumber *string `json:"orderNumber"`
	Recipient   *string `json:"recipient"`
	Decision    string  `json:"decision"`
	Reason      *string `json:"reason"`
	Hash        *string `json:"hash"`
}

// StoreLogPage is the reply of .log: a page of decisions, newest first;
// NextCursor (null on the last page) asks for the next.
type StoreLogPage struct {
	Entries    []StoreLogEntry `json:"entries"`
	NextCursor *string         `json:"nextCursor"`
}

// StorePreview is the reply of .preview: a template rendered for a sample
// order (fields in the order the reply always had).
type StorePreview struct {
	Encoding string `json:"encoding"`
	Segments int    `json:"segments"`
	Text     string `json:"text"`
}
