package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/singleflight"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
)

// authCache remembers billing's answers to token lookups for a short time,
// so that a busy token costs one lookup per TTL instead of one per request.
//
// What keeps it right (docs/architecture.md, "Token lookups"):
//   - billing broadcasts events.AccountChanged after every change that can
//     alter an answer (token rotated, subscription put or ended, usage given
//     back); every replica drops the account's entries when it arrives, and a
//     lookup that was in flight when a change arrived is not stored
//     (generation check), so it cannot bring the old answer back;
//   - the changes an operator or a merchant makes (rotation, subscription)
//     are acknowledged: each replica answers the broadcast once it has
//     dropped the entries, and billing answers the change only when every
//     present replica did. A replica is present once its key is in the
//     events.IngressCachesBucket, and it caches nothing before that;
//   - usage given back is broadcast without waiting; an answer saying the
//     month's limit is used up (or the subscription inactive) is never
//     stored, so a stale entry can only be behind on usage, and billing's
//     reservation refuses what ingress let through;
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
//     request;
//   - concurrent misses of one token share one lookup (lookup), but only
//     lookups begun in the same generation: a request that arrives after a
//     drop never gets the answer of a lookup begun before it.
type authCache struct {
	ttl time.Duration
	id  string // this replica's key in the presence bucket and its acknowledgement

	presence jetstream.KeyValue // where the key is (nil until announce)
	done     chan struct{}      // closed by stop: the key's refresher ends

	mu         sync.Mutex
	nc         *nats.Conn         // the connection the broadcasts arrive on (nil until subscribe)
	sub        *nats.Subscription // the broadcasts' subscription
	present    bool               // the key was written: billing waits for this replica
	reconnects uint64             // nc's reconnect count when last checked
	dropped    int                // sub's dropped count when last checked
	gen        uint64             // bumped by every drop
	stopped    bool               // no longer told of changes: stores nothing
	entries    map[string]authEntry

	flights singleflight.Group // lookups in flight, by digest and generation
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
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return &authCache{ttl: ttl, id: hex.EncodeToString(b[:]), entries: make(map[string]authEntry),
		done: make(chan struct{})}
}

// apply drops what one broadcast names (everything, if it cannot be read)
// and then acknowledges it when billing asks for that.
func (c *authCache) apply(m *nats.Msg) {
	var ev events.AccountChanged
	if err := events.Unmarshal(m.Data, &ev); err != nil || ev.AccountID == 0 {
		c.dropAll()
	} else {
		c.drop(ev.AccountID)
	}
	if m.Reply != "" {
		_ = m.Respond([]byte(c.id)) // unanswered, billing waits its bound and says so
	}
}

// get returns the answer cached for digest, if still good at now (month is
// now's calendar month), and the generation to hand to put after a lookup.
func (c *authCache) get(digest, month string, now time.Time) (events.AuthReply, uint64, bool) {
	if c == nil {
		return events.AuthReply{}, 0, false
	}
	c.mu.Lock() // once a request: the checks and the entry under one lock
	defer c.mu.Unlock()
	if !c.heardLocked() {
		return events.AuthReply{}, neverStore, false
	}
	e, ok := c.entries[digest]
	if ok && e.month == month && now.Before(e.expires) {
		return e.reply, c.gen, true
	}
	if ok {
		delete(c.entries, digest)
	}
	return events.AuthReply{}, c.gen, false
}

// lookup returns the answer cached for digest, or fetches it (billing's
// lookup) and caches it. Concurrent misses of one digest in one generation
// share one fetch, made with ctx's values but not its cancellation (another
// caller may still wait for it; the call has its own bound); each caller
// waits at most until its own ctx ends. A miss while broadcasts may be
// missed (neverStore) is fetched alone, as is every lookup of a nil cache.
func (c *authCache) lookup(ctx context.Context, digest, month string, now time.Time,
	fetch func(context.Context) (events.AuthReply, error)) (events.AuthReply, error) {
	reply, gen, ok := c.get(digest, month, now)
	if ok {
		return reply, nil
	}
	if c == nil || gen == neverStore {
		return fetch(ctx)
	}
	key := digest + "/" + strconv.FormatUint(gen, 10)
	ch := c.flights.DoChan(key, func() (any, error) {
		reply, err := fetch(context.WithoutCancel(ctx))
		if err == nil {
			c.put(digest, month, now, gen, reply)
		}
		return reply, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return events.AuthReply{}, r.Err
		}
		return r.Val.(events.AuthReply), nil
	case <-ctx.Done():
		return events.AuthReply{}, fmt.Errorf("token lookup: %w: %w", apperr.ErrUnavailable, ctx.Err())
	}
}

// neverStore is a generation put never matches: the answer of a lookup made
// while broadcasts could be missed is not kept.
const neverStore = ^uint64(0)

// heardLocked reports whether every broadcast since the last check can have
// arrived: the connection is up and neither reconnected nor dropped a
// broadcast since. When not, everything cached is forgotten (and the caller
// must not use the cache for this lookup). The caller holds c.mu.
func (c *authCache) heardLocked() bool {
	if c.nc == nil || !c.present || c.stopped {
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
// read (the answer may predate that change), or it refuses the account
// (usage given back is not waited for: such an answer could outlive it).
func (c *authCache) put(digest, month string, now time.Time, gen uint64, reply events.AuthReply) {
	if c == nil || !reply.SubscriptionActive || reply.Used >= reply.MonthlyLimit {
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

// stop forgets everything, stores nothing from now on (the change
// broadcasts are no longer heard) and deletes this replica's key, so that
// billing stops waiting for it.
func (c *authCache) stop() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.gen++
	wasStopped := c.stopped
	c.stopped = true
	clear(c.entries)
	kv := c.presence
	c.mu.Unlock()
	if wasStopped {
		return
	}
	close(c.done)
	if kv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = kv.Delete(ctx, c.id) // if it fails the key ages out (events.IngressCacheTTL)
	}
}

// subscribe listens for billing's account changes on nc, applying and
// acknowledging each as it arrives. The caller flushes (so the server has
// the subscription), announces, and unsubscribes when done.
func (c *authCache) subscribe(nc *nats.Conn, names events.Names) (*nats.Subscription, error) {
	if c == nil {
		return nil, nil
	}
	sub, err := nc.Subscribe(names.BillingAccountChanged(), c.apply)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.nc, c.sub, c.reconnects = nc, sub, nc.Stats().Reconnects
	c.mu.Unlock()
	return sub, nil
}

// announce writes this replica's key into the presence bucket (after
// subscribe: a replica billing waits for must hear the broadcasts), and
// rewrites it every events.IngressCacheRefresh until stop. Nothing is cached
// before it succeeded.
func (c *authCache) announce(ctx context.Context, kv jetstream.KeyValue) error {
	if c == nil {
		return nil
	}
	if _, err := kv.Put(ctx, c.id, nil); err != nil {
		return fmt.Errorf("announce the token cache: %w", err)
	}
	c.mu.Lock()
	c.presence, c.present = kv, true
	c.mu.Unlock()
	refresh := context.WithoutCancel(ctx) // the refresher outlives New's context; stop ends it
	go func() {
		t := time.NewTicker(events.IngressCacheRefresh)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				pctx, cancel := context.WithTimeout(refresh, events.IngressCacheRefresh)
				_, err := kv.Put(pctx, c.id, nil)
				cancel()
				if err != nil {
					// Billing may stop counting this replica: stop caching
					// until a write succeeds again.
					c.mu.Lock()
					c.present = false
					c.gen++
					clear(c.entries)
					c.mu.Unlock()
					continue
				}
				c.mu.Lock()
				c.present = !c.stopped
				c.mu.Unlock()
			case <-c.done:
				return
			}
		}
	}()
	return nil
}
