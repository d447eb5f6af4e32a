package httpapi

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/apitosms/apitosms/libs/events"
)

// authCache remembers billing's answers to token lookups for a short time,
// so that a busy token costs one lookup per TTL instead of one per request.
//
// What keeps it right:
//   - billing broadcasts events.AccountChanged after every change that can
//     alter an answer (token rotated, subscription put or ended, usage given
//     back) and answers its caller only once the NATS server has taken it;
//     every replica drops the account's entries when it arrives, and a
//     lookup that was in flight when a change arrived is not stored
//     (generation check), so it cannot bring the old answer back;
//   - the broadcasts land in a channel that the NATS reader fills in order
//     with everything else on the connection, and every lookup first applies
//     what is waiting there: with billing on the same connection (all in
//     one process) a request that follows the change's answer always sees
//     it; a replica on its own connection sees it as soon as its reader has
//     read it (a network hop after the change's answer);
//   - broadcasts can only be missed while the connection is down or when
//     the subscription's buffer overflowed: every lookup first checks both
//     (connection status, reconnect count, dropped count) and forgets
//     everything if either happened, and nothing is cached while the
//     connection is not up;
//   - an entry lives at most ttl and never across a calendar month (usage
//     is per month);
//   - unknown tokens are never cached, and nothing that must be exact is
//     decided from an entry: the rate limit is counted in the shared bucket
//     on every request, and quota is reserved by billing on every queue
//     request (a cached "used" that is behind only means billing refuses
//     instead of ingress; a subscription that expired since is refused by the
//     reservation too).
type authCache struct {
	ttl time.Duration

	changes chan *nats.Msg // AccountChanged broadcasts not applied yet
	done    chan struct{}  // closed by stop

	nc         *nats.Conn         // the connection the broadcasts arrive on (nil until subscribe)
	sub        *nats.Subscription // the broadcasts' subscription
	reconnects uint64             // nc's reconnect count when last checked
	dropped    int                // sub's dropped count when last checked

	mu      sync.Mutex
	gen     uint64 // bumped by every drop
	stopped bool   // no longer told of changes: stores nothing
	entries map[string]authEntry
}

type authEntry struct {
	reply   events.AuthReply
	month   string
	expires time.Time
}

// authCacheMax bounds the entries; past it the cache starts over.
const authCacheMax = 100_000

// newAuthCache returns a cache keeping answers for ttl; ttl <= 0 disables it.
func newAuthCache(ttl time.Duration) *authCache {
	if ttl <= 0 {
		return nil
	}
	return &authCache{ttl: ttl, entries: make(map[string]authEntry),
		changes: make(chan *nats.Msg, authChangesBuffer), done: make(chan struct{})}
}

// authChangesBuffer is how many change broadcasts may wait to be applied.
const authChangesBuffer = 4096

// applyChanges applies the broadcasts waiting in the channel, without
// waiting for more.
func (c *authCache) applyChanges() {
	for {
		select {
		case m := <-c.changes:
			c.apply(m)
		default:
			return
		}
	}
}

// apply drops what one broadcast names (everything, if it cannot be read).
func (c *authCache) apply(m *nats.Msg) {
	var ev events.AccountChanged
	if err := events.Unmarshal(m.Data, &ev); err != nil || ev.AccountID == 0 {
		c.dropAll()
		return
	}
	c.drop(ev.AccountID)
}

// get returns the answer cached for digest, if still good at now (month is
// now's calendar month), and the generation to hand to put after a lookup.
func (c *authCache) get(digest, month string, now time.Time) (events.AuthReply, uint64, bool) {
	if c == nil {
		return events.AuthReply{}, 0, false
	}
	if !c.heard() {
		return events.AuthReply{}, neverStore, false
	}
	c.applyChanges()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[digest]
	if ok && e.month == month && now.Before(e.expires) {
		return e.reply, c.gen, true
	}
	if ok {
		delete(c.entries, digest)
	}
	return events.AuthReply{}, c.gen, false
}

// neverStore is a generation put never matches: the answer of a lookup made
// while broadcasts could be missed is not kept.
const neverStore = ^uint64(0)

// heard reports whether every broadcast since the last check can have
// arrived: the connection is up and neither reconnected nor dropped a
// broadcast since. When not, everything cached is forgotten (and the caller
// must not use the cache for this lookup).
func (c *authCache) heard() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc == nil || c.stopped {
		return false
	}
	if c.nc.Status() != nats.CONNECTED {
		c.gen++
		clear(c.entries)
		return false
	}
	reconnects := c.nc.Stats().Reconnects
	dropped, _ := c.sub.Dropped()
	if reconnects != c.reconnects || dropped != c.dropped {
		c.reconnects, c.dropped = reconnects, dropped
		c.gen++
		clear(c.entries)
	}
	return true
}

// put stores a lookup's answer unless something was dropped since gen was
// read (the answer may predate that change).
func (c *authCache) put(digest, month string, now time.Time, gen uint64, reply events.AuthReply) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || c.stopped {
		return
	}
	if len(c.entries) >= authCacheMax {
		clear(c.entries)
	}
	c.entries[digest] = authEntry{reply: reply, month: month, expires: now.Add(c.ttl)}
}

// drop forgets every answer about account id.
func (c *authCache) drop(id int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.entries {
		if e.reply.AccountID == id {
			delete(c.entries, k)
		}
	}
}

// dropAll forgets everything (a change message that cannot be read).
func (c *authCache) dropAll() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}

// stop forgets everything and stores nothing from now on: the change
// broadcasts are no longer heard.
func (c *authCache) stop() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if !c.stopped {
		close(c.done)
	}
	c.stopped = true
	clear(c.entries)
}

// subscribe listens for billing's account changes on nc, and applies them
// also when no request comes (until stop). The caller unsubscribes when done.
func (c *authCache) subscribe(nc *nats.Conn, names events.Names) (*nats.Subscription, error) {
	if c == nil {
		return nil, nil
	}
	sub, err := nc.ChanSubscribe(names.BillingAccountChanged(), c.changes)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.nc, c.sub, c.reconnects = nc, sub, nc.Stats().Reconnects
	c.mu.Unlock()
	go func() {
		for {
			select {
			case m := <-c.changes:
				c.apply(m)
			case <-c.done:
				return
			}
		}
	}()
	return sub, nil
}
