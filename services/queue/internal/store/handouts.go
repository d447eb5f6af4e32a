package store

import (
	"sync"
	"time"
	"unsafe"
)

// handOutsKept bounds the hand-outs a handOuts remembers (about 300 bytes
// each with a short text: some 20 MB at most); past it the oldest are
// forgotten, and their reports read the rows in full as before.
const handOutsKept = 1 << 16

// handOuts remembers, from the claim that handed them out, what the events
// of told accounts' messages need beyond the narrow report read (phone,
// text, times, attempts, limits, lane), so that the report path in the
// writer's transaction reads the same three integers a row for every
// account instead of seventeen columns and a join for told ones
// (docs/benchmarks.md, session 8, h2). A remembered hand-out is used only
// while its row still carries its claim id (no requeue or later claim
// since: a requeue clears the id, a new claim sets another) and only for an
// outcome its report records now (no outcome stored before: a redelivery
// or a repeat reads the row in full). Anything else, a hand-out forgotten,
// a restart, another process's claim, is only a miss: the row is read in
// full, as without handOuts. SQLite only (one writer); PostgreSQL reads
// in full as before.
type handOuts struct {
	tell  func(account int64) bool // whose hand-outs to remember
	mu    sync.Mutex
	byPos map[int64]handOut
	ring  []handOutKey // remembered ones in order, to forget the oldest
	next  int
}

type handOutKey struct{ pos, claim int64 }

// handOut is one message as its claim handed it out.
type handOut struct {
	claim, account int64
	phone, text    string
	high           bool
	// claimToldSQLite's columns: the accepted time as SQLite holds it
	// (parsed when used, as wideReportedSQLite's), the attempts after the
	// claim, the §12 limits; and the claim's time.
	accepted           string
	attempts           int64
	sendAt, validUntil int64
	claimedAt          time.Time
}

// RememberHandOuts makes claims of the accounts tell names (on SQLite)
// remember what their messages' events will need (handOuts), and the report
// path use it. Call it before claims run; tell is asked once per claim and
// must be cheap (no refresh). Without it every told row is read in full.
func (s *Store) RememberHandOuts(tell func(account int64) bool) {
	if s.pg || tell == nil {
		return
	}
	s.handOuts = &handOuts{tell: tell, byPos: make(map[int64]handOut), ring: make([]handOutKey, handOutsKept)}
}

// remembers reports whether a claim of account should remember its
// hand-outs.
func (h *handOuts) remembers(account int64) bool { return h != nil && h.tell(account) }

// remember keeps list (one claim's), forgetting the oldest beyond
// handOutsKept.
func (h *handOuts) remember(positions []int64, list []handOut) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, e := range list {
		pos := positions[i]
		old := h.ring[h.next]
		if kept, ok := h.byPos[old.pos]; ok && kept.claim == old.claim && old.claim != 0 {
			delete(h.byPos, old.pos)
		}
		h.ring[h.next] = handOutKey{pos, e.claim}
		h.next = (h.next + 1) % len(h.ring)
		h.byPos[pos] = e
	}
}

// take returns and forgets the hand-out of pos if it was account's under
// claim (the row's claim id now).
func (h *handOuts) take(pos, account, claim int64) (handOut, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.byPos[pos]
	if !ok {
		return handOut{}, false
	}
	delete(h.byPos, pos)
	if e.claim != claim || e.account != account || claim == 0 {
		return handOut{}, false
	}
	return e, true
}

// tracked is the message at pos as the wide read shows it before its
// first outcome (scanWideReported with no outcome row: no device, no
// finish, the status initiated).
func (e handOut) tracked(pos int64) (Tracked, error) {
	claimed := e.claimedAt
	t := Tracked{Pos: pos, AccountID: e.account, Phone: e.phone, Text: e.text, Status: StatusInitiated,
		Attempts: max(int(e.attempts), 1), SendAt: e.sendAt, ValidUntil: e.validUntil, High: e.high, ClaimedAt: &claimed}
	var err error
	t.AcceptedAt, err = parseReportText(e.accepted)
	return t, err
}

var _ [128 - unsafe.Sizeof(handOut{})]byte // handOut fits a map slot
