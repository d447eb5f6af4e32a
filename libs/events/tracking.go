package events

import "time"

// Message tracking (contract §9): ingress asks the queue service, which owns
// the read model (the messages table: phone, text, hand-out and final
// status), over request/reply. Every request names the account; a position
// of another account is answered as if unknown.

// More statuses of the contract (§9, §12) beyond those of Part 1.
const (
	StatusExpired   = 4
	StatusCancelled = 5
)

// QueueLookup: LookupRequest -> LookupReply.
func (n Names) QueueLookup() string { return n.rpc("queue.v1.lookup") }

// QueueHistory: HistoryRequest -> HistoryReply.
func (n Names) QueueHistory() string { return n.rpc("queue.v1.history") }

// QueueCancel: CancelRequest -> CancelReply.
func (n Names) QueueCancel() string { return n.rpc("queue.v1.cancel") }

// TrackedSMS is one message as tracking shows it. Times are UTC; a nil time
// and an empty Device are not known yet.
type TrackedSMS struct {
	Pos        int64      `json:"pos"`
	Phone      string     `json:"phone"`
	Text       string     `json:"text"`
	Status     int        `json:"status"`
	QueuedAt   time.Time  `json:"queuedAt"`
	ClaimedAt  *time.Time `json:"claimedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	Device     string     `json:"device,omitempty"`
	Attempts   int        `json:"attempts"`
	// Contract §12, when given: Unix milliseconds, high priority.
	SendAt     int64 `json:"sendAt,omitempty"`
	ValidUntil int64 `json:"validUntil,omitempty"`
	High       bool  `json:"high,omitempty"`
}

// MaxLookup is the most positions of one LookupRequest (contract §9: 1000
// hashes per bulk lookup).
const MaxLookup = 1000

// LookupRequest asks for the account's messages at Positions. The answer
// sees every message accepted and every report applied before the request
// (read-your-writes).
type LookupRequest struct {
	AccountID int64   `json:"accountId"`
	Positions []int64 `json:"positions"`
}

// LookupReply holds the account's messages among the first Done positions
// asked (in no particular order); positions among them not listed are
// unknown or another account's. Done is below len(Positions) only when the
// reply would not fit in one NATS message: ask again for the rest.
type LookupReply struct {
	Messages []TrackedSMS `json:"messages"`
	Done     int          `json:"done"`
}

// MaxHistory is the most messages of one history page (contract §9).
const MaxHistory = 500

// HistoryRequest asks for the account's messages newest first (by FIFO
// position), below position Before (0: from the newest), filtered: Statuses
// (any of them; empty: all), Phone (exact, normalized; empty: all), QueuedAt
// in [From, To) (nil: unbounded).
type HistoryRequest struct {
	AccountID int64      `json:"accountId"`
	Before    int64      `json:"before,omitempty"`
	Limit     int        `json:"limit"`
	Statuses  []int      `json:"statuses,omitempty"`
	Phone     string     `json:"phone,omitempty"`
	From      *time.Time `json:"from,omitempty"`
	To        *time.Time `json:"to,omitempty"`
}

// HistoryReply is one page. Next is the Before of the following page, 0 when
// no matching message is left; a page may hold fewer than Limit messages
// while Next is not 0 (a reply is kept within one NATS message).
type HistoryReply struct {
	Messages []TrackedSMS `json:"messages"`
	Next     int64        `json:"next,omitempty"`
}

// CancelRequest cancels the account's message at Pos if it is still new
// (never handed out): it becomes cancelled (5), is never handed out, and its
// quota is given back. Errors: message_not_found (404), not_cancellable (409).
type CancelRequest struct {
	AccountID int64 `json:"accountId"`
	Pos       int64 `json:"pos"`
}

// CancelReply is the cancelled message.
type CancelReply struct {
	Message TrackedSMS `json:"message"`
}
