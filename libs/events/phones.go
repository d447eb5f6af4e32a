package events

import (
	"time"

	"github.com/apitosms/apitosms/libs/timestamp"
)

// Phones (contract §11): ingress learns from the device of pulls and
// reports when each phone was last seen, keeps that in memory and sends it
// to the queue service in one compact batch every few seconds
// (QueuePhonesSeen); the queue keeps a row per account and device, counts
// the day's outcomes from the reports it records, answers the list
// (QueuePhones) and fires phone.offline / phone.online.

// QueuePhonesSeen: PhonesSeen -> PhonesSeenReply.
func (n Names) QueuePhonesSeen() string { return n.rpc("queue.v1.phones-seen") }

// QueuePhones: PhonesRequest -> PhonesReply.
func (n Names) QueuePhones() string { return n.rpc("queue.v1.phones") }

// PhoneSeen is when one phone (account and device) last pulled and last
// reported; a zero time is not known (not in this batch).
type PhoneSeen struct {
	AccountID int64     `json:"a"`
	Device    string    `json:"d"`
	PullAt    time.Time `json:"p,omitzero"`
	ReportAt  time.Time `json:"r,omitzero"`
}

// PhonesSeen is one flush of an ingress: each phone at most once.
type PhonesSeen struct {
	Phones []PhoneSeen `json:"phones"`
}

// PhonesSeenReply acknowledges a flush once it is stored.
type PhonesSeenReply struct{}

// PhonesRequest lists an account's phones.
type PhonesRequest struct {
	AccountID int64 `json:"accountId"`
}

// Phone is one phone of a PhonesReply (ingress renders it as contract §11
// shows it); nil times are not known.
type Phone struct {
	Device       string     `json:"device"`
	LastSeenAt   *time.Time `json:"lastSeenAt"`
	LastPullAt   *time.Time `json:"lastPullAt"`
	LastReportAt *time.Time `json:"lastReportAt"`
	SentToday    int64      `json:"sentToday"`
	FailedToday  int64      `json:"failedToday"`
	Online       bool       `json:"online"`
}

// PhonesReply is every phone of the account, by device name.
type PhonesReply struct {
	Phones []Phone `json:"phones"`
}

// PhoneEvent is the data of phone.offline and phone.online (contract §10).
type PhoneEvent struct {
	Device     string         `json:"device"`
	LastSeenAt timestamp.Time `json:"lastSeenAt"`
}
