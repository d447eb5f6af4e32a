package events

import (
	"fmt"
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
	out := MessageObject{
		Hash: hash, Phone: m.Phone, Text: m.Text, Status: m.Status, StatusName: StatusName(m.Status),
		QueuedAt: timestamp.Time{Time: m.QueuedAt}, Attempts: m.Attempts,
	}
	if m.ClaimedAt != nil {
		out.InitiatedAt = timestamp.Time{Time: *m.ClaimedAt}
	}
	if m.FinishedAt != nil {
		out.FinishedAt = timestamp.Time{Time: *m.FinishedAt}
	}
	if m.Device != "" {
		d := m.Device
		out.Device = &d
	}
	if m.SendAt != 0 {
		out.SendAt = &timestamp.Time{Time: time.UnixMilli(m.SendAt)}
	}
	if m.ValidUntil != 0 {
		out.ValidUntil = &timestamp.Time{Time: time.UnixMilli(m.ValidUntil)}
	}
	switch {
	case m.High:
		out.Priority = "high"
	case m.SendAt != 0 || m.ValidUntil != 0:
		out.Priority = "normal"
	}
	return out
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
	var at time.Time
	switch {
	case m.Status == StatusInitiated:
		id = fmt.Sprintf("%s_%d", id, m.Attempts)
		if m.ClaimedAt != nil {
			at = *m.ClaimedAt
		}
	case m.FinishedAt != nil:
		at = *m.FinishedAt
	}
	data, err := Marshal(NewMessageObject(hash, m))
	if err != nil { // cannot happen: plain strings, ints and times
		return Notification{}, false
	}
	return Notification{ID: id, AccountID: accountID, Type: typ, At: at, Data: data}, true
}
