package events

import "time"

// AcceptedBatch is published once per accepted chunk of a queue request: one
// JetStream message (one fsync) for up to MaxItemsPerEvent SMS. The order of
// Items is the order the merchant listed them in; the stream sequence orders
// batches, so (stream sequence, item index) is the FIFO position.
type AcceptedBatch struct {
	AcceptedAt time.Time     `json:"at"`
	Items      []AcceptedSMS `json:"items"`
}

// MaxItemsPerEvent bounds the items of one AcceptedBatch, so the FIFO
// position (sequence << PositionShift | index) never overflows into the next
// sequence.
const (
	MaxItemsPerEvent = 1 << PositionShift
	PositionShift    = 10
)

// Position is the FIFO position of item index within the event at stream
// sequence seq: strictly increasing in acceptance order.
func Position(seq uint64, index int) int64 {
	return int64(seq<<PositionShift) | int64(index)
}

// AcceptedSMS is one SMS accepted for an account. Its public hash is not
// carried: it is its FIFO position encrypted (libs/hashid).
//
// The §12 fields are optional and omitted when not given, so a Part 1
// message is byte for byte what it was: SendAt and ValidUntil are Unix
// milliseconds (0: none), High marks the high-priority lane.
type AcceptedSMS struct {
	AccountID  int64  `json:"a"`
	Phone      string `json:"p"`
	Text       string `json:"t"`
	SendAt     int64  `json:"s,omitempty"`
	ValidUntil int64  `json:"v,omitempty"`
	High       bool   `json:"h,omitempty"`
}

// Message statuses, as in the contract.
const (
	StatusNew       = 0
	StatusInitiated = 1
	StatusSent      = 2
	StatusFailed    = 3
)

// ReportedBatch is published by the status service after it applied delivery
// reports, so the queue service never hands out a message that already has a
// final status.
type ReportedBatch struct {
	AccountID  int64      `json:"a"`
	ReportedAt time.Time  `json:"at"`
	Device     string     `json:"d,omitempty"` // the reporting phone's name (§4), kept for tracking (§9)
	Items      []Reported `json:"items"`
}

// Reported is one final status applied to the message at FIFO position Pos
// (events.Position), which both the status and the queue stores key their
// rows by.
type Reported struct {
	Pos    int64 `json:"p"`
	Status int   `json:"s"`
}

// AuthRequest asks billing who owns a token. Only the token's digest travels.
type AuthRequest struct {
	TokenDigest string `json:"tokenDigest"`
}

// AuthReply describes the account owning a token. An unknown digest is an
// error with code invalid_token.
type AuthReply struct {
	AccountID          int64 `json:"accountId"`
	RateLimitPerMinute int   `json:"rateLimitPerMinute"`
	SubscriptionActive bool  `json:"subscriptionActive"`
	MonthlyLimit       int64 `json:"monthlyLimit"`
	Used               int64 `json:"used"`
}

// ReserveRequest asks billing to take up to Count messages from this month's
// quota of an account.
type ReserveRequest struct {
	AccountID int64 `json:"accountId"`
	Count     int   `json:"count"`
}

// ReserveReply says how many were granted (0..Count); Used and Limit are the
// counters after the reservation. Month identifies the counter, for Release.
type ReserveReply struct {
	Granted            int    `json:"granted"`
	Used               int64  `json:"used"`
	Limit              int64  `json:"limit"`
	Month              string `json:"month"`
	SubscriptionActive bool   `json:"subscriptionActive"`
}

// ReserveManyRequest carries several reservations, applied in order in one
// transaction with the same outcome as one ReserveRequest each.
type ReserveManyRequest struct {
	Items []ReserveRequest `json:"items"`
}

// ReserveManyReply answers each item of a ReserveManyRequest, in order: its
// grant, or the error that item alone met (an unknown account).
type ReserveManyReply struct {
	Items []ReserveOutcome `json:"items"`
}

// ReserveOutcome is one item's answer: Err set, or the grant.
type ReserveOutcome struct {
	ReserveReply
	Err *ItemError `json:"err,omitempty"`
}

// ItemError is a contract error (libs/apperr's status, code and sentence)
// that one item of a many-item call met alone.
type ItemError struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"error"`
}

// ReleaseRequest gives back Count messages reserved in Month that were not
// accepted after all (the publish failed).
type ReleaseRequest struct {
	AccountID int64  `json:"accountId"`
	Count     int    `json:"count"`
	Month     string `json:"month"`
}

// ReleaseReply acknowledges a ReleaseRequest.
type ReleaseReply struct{}

// ClaimRequest asks the queue service for up to Limit of the account's oldest
// new messages, marking them initiated. The claim sees every message accepted
// before it was asked (read-your-writes).
//
// With Confirm set the caller promises a ClaimAck once its answer is
// written; the queue records the claim and returns its messages to new, at
// their FIFO place, if no ack comes within its confirm timeout (so a caller
// that dies between claim and answer loses nothing). WaitMs is how long the
// caller waits for the reply from when it sent the request: the queue does
// not start a claim nobody waits for any more. Zero values mean a caller
// that never acks (the claim is final at once) and no bound.
type ClaimRequest struct {
	AccountID int64 `json:"accountId"`
	Limit     int   `json:"limit"`
	Confirm   bool  `json:"confirm,omitempty"`
	WaitMs    int64 `json:"waitMs,omitempty"`
}

// ClaimReply lists the claimed messages, oldest first. ClaimIDs, set when
// the request asked to confirm and something was claimed, are what the
// caller acknowledges (ClaimAck): one per part of the claim (a claim that
// had to wait for ingestion is two).
type ClaimReply struct {
	Messages []ClaimedSMS `json:"messages"`
	ClaimIDs []int64      `json:"claimIds,omitempty"`
}

// ClaimAck confirms claims whose answers were written (published on
// Names.QueueClaimAck, no reply). Losing one only makes its messages be
// handed out again after the confirm timeout; acking twice is harmless.
type ClaimAck struct {
	ClaimIDs []int64 `json:"ids"`
}

// ClaimedSMS is one message handed to a phone; ingress turns Pos into the
// message's hash.
type ClaimedSMS struct {
	Pos   int64  `json:"pos"`
	Phone string `json:"phone"`
	Text  string `json:"text"`
}

// ApplyRequest carries a phone's delivery reports, already validated for shape.
type ApplyRequest struct {
	AccountID int64         `json:"accountId"`
	Device    string        `json:"device"`
	Reports   []ApplyReport `json:"reports"`
}

// ApplyReport is one entry of a status request; Index is its position in the
// phone's request so errors can point at it, Pos the FIFO position its hash
// decodes to (libs/hashid).
type ApplyReport struct {
	Index  int   `json:"index"`
	Pos    int64 `json:"pos"`
	Status int   `json:"status"`
}

// ApplyReply counts entries whose message now has the asked status, and
// lists the others with a reason.
type ApplyReply struct {
	Updated int          `json:"updated"`
	Errors  []IndexError `json:"errors"`
}

// IndexError is a per-item error, shaped as in the contract.
type IndexError struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}
