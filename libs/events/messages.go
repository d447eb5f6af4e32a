package events

import (
	"strconv"
	"time"

	"github.com/apitosms/apitosms/libs/timestamp"
)

// The message object of contract §9 is rendered here once: ingress answers
// tracking requests with it and the queue service puts it into message.*
// webhook events (contract §10), so both show exactly the same object.

// StatusNames are the contract's status names, by status (§9).
var StatusNames = [...]string{"new", "initiated", "sent", "failed", "expired", "cancelled"}

// StatusName is status's contract name, "" for a status the contract does
// not know.
func StatusName(status int) string {
	if status >= 0 && status < len(StatusNames) {
		return StatusNames[status]
	}
	return ""
}

// MessageObject is the message object of contract §9, fields in its order.
type MessageObject struct {
	Hash        string         `json:"hash"`
	Phone       string         `json:"phone"`
	Text        string         `json:"text"`
	Status      int            `json:"status"`
	StatusName  string         `json:"statusName"`
	QueuedAt    timestamp.Time `json:"queuedAt"`
	InitiatedAt timestamp.Time `json:"initiatedAt"`
	FinishedAt  timestamp.Time `json:"finishedAt"`
	Device      *string        `json:"device"`
	Attempts    int            `json:"attempts"`
	// Added when §12's fields were given (priority with any of them).
	SendAt     *timestamp.Time `json:"sendAt,omitempty"`
	ValidUntil *timestamp.Time `json:"validUntil,omitempty"`
	Priority   string          `json:"priority,omitempty"`
}

// NewMessageObject renders m, whose public hash is hash.
func NewMessageObject(hash string, m TrackedSMS) MessageObject {
	var o MessageObject
	o.set(hash, &m, new(messageSpare))
	return o
}

// messageSpare holds what a MessageObject's pointers point to, so that a
// caller rendering many (MessageBatch) allocates it once.
type messageSpare struct {
	device             string
	sendAt, validUntil timestamp.Time
}

// set makes o the rendering of m, its pointers into spare.
func (o *MessageObject) set(hash string, m *TrackedSMS, spare *messageSpare) {
	*o = MessageObject{
		Hash: hash, Phone: m.Phone, Text: m.Text, Status: m.Status, StatusName: StatusName(m.Status),
		QueuedAt: timestamp.Time{Time: m.QueuedAt}, Attempts: m.Attempts,
	}
	if m.ClaimedAt != nil {
		o.InitiatedAt = timestamp.Time{Time: *m.ClaimedAt}
	}
	if m.FinishedAt != nil {
		o.FinishedAt = timestamp.Time{Time: *m.FinishedAt}
	}
	if m.Device != "" {
		spare.device = m.Device
		o.Device = &spare.device
	}
	if m.SendAt != 0 {
		spare.sendAt = timestamp.Time{Time: time.UnixMilli(m.SendAt)}
		o.SendAt = &spare.sendAt
	}
	if m.ValidUntil != 0 {
		spare.validUntil = timestamp.Time{Time: time.UnixMilli(m.ValidUntil)}
		o.ValidUntil = &spare.validUntil
	}
	switch {
	case m.High:
		o.Priority = "high"
	case m.SendAt != 0 || m.ValidUntil != 0:
		o.Priority = "normal"
	}
}

// appendJSON appends o as Marshal encodes it, byte for byte, without
// Marshal's second pass over each timestamp's MarshalJSON output (the
// queue renders one object per message event; see docs/benchmarks.md,
// issue 10).
func (o *MessageObject) appendJSON(b []byte) []byte {
	b = append(b, `{"hash":`...)
	b = appendJSONString(b, o.Hash)
	b = append(b, `,"phone":`...)
	b = appendJSONString(b, o.Phone)
	b = append(b, `,"text":`...)
	b = appendJSONString(b, o.Text)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(o.Status), 10)
	b = append(b, `,"statusName":`...)
	b = appendJSONString(b, o.StatusName)
	b = append(b, `,"queuedAt":`...)
	b = appendTimestamp(b, o.QueuedAt)
	b = append(b, `,"initiatedAt":`...)
	b = appendTimestamp(b, o.InitiatedAt)
	b = append(b, `,"finishedAt":`...)
	b = appendTimestamp(b, o.FinishedAt)
	b = append(b, `,"device":`...)
	if o.Device == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, *o.Device)
	}
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(o.Attempts), 10)
	if o.SendAt != nil {
		b = append(b, `,"sendAt":`...)
		b = appendTimestamp(b, *o.SendAt)
	}
	if o.ValidUntil != nil {
		b = append(b, `,"validUntil":`...)
		b = appendTimestamp(b, *o.ValidUntil)
	}
	if o.Priority != "" {
		b = append(b, `,"priority":`...)
		b = appendJSONString(b, o.Priority)
	}
	return append(b, '}')
}

// appendTimestamp appends t as its MarshalJSON renders it.
func appendTimestamp(b []byte, t timestamp.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, timestamp.Layout)
	return append(b, '"')
}

// messageEventTypes are the webhook event types of message statuses.
var messageEventTypes = map[int]string{
	StatusInitiated: TypeMessageInitiated,
	StatusSent:      TypeMessageSent,
	StatusFailed:    TypeMessageFailed,
	StatusExpired:   TypeMessageExpired,
	StatusCancelled: TypeMessageCancelled,
}

// MessageType is the webhook event type of a message status, false for a
// status that has no event (new).
func MessageType(status int) (string, bool) {
	typ, ok := messageEventTypes[status]
	return typ, ok
}

// MessageNotification is the webhook event telling that m (public hash
// hash) reached its status: message.sent, .failed, .expired, .cancelled or
// .initiated, with the §9 object as data. Its id names the fact, not the
// attempt to publish it: "msg_<hash>_<status name>" for a final status
// (a message ends once), "msg_<hash>_initiated_<attempts>" for a hand-out;
// so a producer that publishes it again after a crash or a redelivery
// creates no second event. Its time is when the status was reached
// (FinishedAt, or ClaimedAt for a hand-out). It reports false for a status
// that has no event (new).
func MessageNotification(accountID int64, hash string, m TrackedSMS) (Notification, bool) {
	typ, ok := messageEventTypes[m.Status]
	if !ok {
		return Notification{}, false
	}
	id := "msg_" + hash + "_" + StatusName(m.Status)
	if m.Status == StatusInitiated {
		id += "_" + strconv.Itoa(m.Attempts)
	}
	o := NewMessageObject(hash, m)
	return Notification{
		ID: id, AccountID: accountID, Type: typ, At: messageEventTime(m),
		Data: o.appendJSON(make([]byte, 0, 256+len(m.Text)+len(m.Phone)+len(m.Device))),
	}, true
}

// appendMessageEventID appends the id MessageNotification gives m's event
// (TestMessageBatchEqualsMarshal compares them).
func appendMessageEventID(b []byte, hash string, m TrackedSMS) []byte {
	b = append(b, "msg_"...)
	b = append(b, hash...)
	b = append(b, '_')
	b = append(b, StatusName(m.Status)...)
	if m.Status == StatusInitiated {
		b = append(b, '_')
		b = strconv.AppendInt(b, int64(m.Attempts), 10)
	}
	return b
}

// messageEventTime is when m reached its status (zero: unknown).
func messageEventTime(m TrackedSMS) time.Time {
	switch {
	case m.Status == StatusInitiated:
		if m.ClaimedAt != nil {
			return *m.ClaimedAt
		}
	case m.FinishedAt != nil:
		return *m.FinishedAt
	}
	return time.Time{}
}
