// Package httpapi serves the token endpoints of contract §1-§4: queue,
// get_messages and status. It authenticates through billing, counts the
// request in the shared rate-limit window, and then hands the work to the
// owning service: billing reserves quota, the accepted stream takes the
// messages, queue claims them, status applies reports.
package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/hashid"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/timestamp"
	"github.com/apitosms/apitosms/libs/token"
	"github.com/apitosms/apitosms/services/ingress/internal/idempotency"
	"github.com/apitosms/apitosms/services/ingress/internal/metrics"
	"github.com/apitosms/apitosms/services/ingress/internal/publish"
	"github.com/apitosms/apitosms/services/ingress/internal/ratelimit"
	"github.com/apitosms/apitosms/services/ingress/internal/reserve"
)

// Settings are the limits of the API.
type Settings struct {
	MaxBatch       int           // most items in one queue or status request
	MaxBodyBytes   int           // largest body
	RequestTimeout time.Duration // bound on the work behind one request
	ReadRateLimit  int           // requests per rolling minute in a token's read window (Part 2)
	AuthCacheTTL   time.Duration // how long a token lookup is reused (authcache.go); 0: never
}

// DefaultReadRateLimit is the read window's size (requests per rolling
// minute, contract Part 2).
const DefaultReadRateLimit = 600

// API holds what the handlers need.
type API struct {
	nc        *nats.Conn
	names     events.Names
	limiter   *ratelimit.Limiter
	idem      *idempotency.Store
	publisher *publish.Publisher
	reserver  *reserve.Reserver
	hashes    *hashid.Codec
	set       Settings
	log       *slog.Logger
	m         *metrics.Metrics
	phones    *phoneTable // phones seen since the last flush (phones.go)
	auth      *authCache  // billing's token lookups, reused (nil: off)
	authSub   *nats.Subscription
}

// New returns the API.
func New(nc *nats.Conn, names events.Names, limiter *ratelimit.Limiter, idem *idempotency.Store,
	publisher *publish.Publisher, reserver *reserve.Reserver, hashes *hashid.Codec, set Settings, m *metrics.Metrics, log *slog.Logger) (*API, error) {
	phones := newPhoneTable(m)
	a := &API{nc: nc, names: names, limiter: limiter, idem: idem, publisher: publisher, reserver: reserver, hashes: hashes, set: set, log: log, m: m, phones: phones,
		auth: newAuthCache(set.AuthCacheTTL)}
	var err error
	if a.authSub, err = a.auth.subscribe(nc, names); err != nil {
		return nil, fmt.Errorf("subscribe to account changes: %w", err)
	}
	if a.authSub != nil {
		// The server has the subscription before the replica announces
		// itself (Announce), and so before any lookup is cached.
		if err := nc.Flush(); err != nil {
			a.Close()
			return nil, fmt.Errorf("subscribe to account changes: %w", err)
		}
	}
	return a, nil
}

// Announce tells billing, through the presence bucket kv
// (events.IngressCachesBucket), that this replica caches token lookups and
// must acknowledge account changes; lookups are cached only after it
// succeeded. Without a cache it does nothing.
func (a *API) Announce(ctx context.Context, kv jetstream.KeyValue) error {
	return a.auth.announce(ctx, kv)
}

// CachesLookups reports whether this replica keeps token lookups at all.
func (a *API) CachesLookups() bool { return a.auth != nil }

// Close stops listening for account changes (and stops caching lookups).
func (a *API) Close() {
	if a.authSub != nil {
		_ = a.authSub.Unsubscribe()
	}
	a.auth.stop()
}

// Routes mounts the endpoints. get_messages hands messages out, so it is
// registered for GET and POST only: fiber's Get would also answer HEAD, and a
// HEAD (monitors, curl -I) would mark messages initiated and drop the body.
func (a *API) Routes(r fiber.Router) {
	r.Post("/api/:token/queue", a.queue)
	r.Add(fiber.MethodGet, "/api/:token/get_messages", a.getMessages)
	r.Post("/api/:token/get_messages", a.getMessages)
	r.Post("/api/:token/status", a.status)
	// Message tracking (contract §9): tracking.go.
	r.Get("/api/:token/messages", a.history)
	r.Post("/api/:token/messages/lookup", a.lookup)
	r.Get("/api/:token/messages/:hash", a.message)
	r.Delete("/api/:token/messages/:hash", a.cancelMessage)
	// Webhooks (contract §10): webhooks.go.
	a.webhookRoutes(r)
	// Phones (contract §11): phones.go.
	r.Get("/api/:token/phones", a.listPhones)
	// Lease settings (contract §12): settings.go.
	a.settingsRoutes(r)
	// Store connections and opt-outs (contract §13): stores.go.
	a.storeRoutes(r)
}

var errRateLimited = apperr.New(http.StatusTooManyRequests, "rate_limited", "Rate limit exceeded")

// authenticate resolves the token to an account and takes one request from
// its send window (contract §1), setting the rate-limit headers.
func (a *API) authenticate(ctx context.Context, c *fiber.Ctx) (events.AuthReply, error) {
	return a.authenticateIn(ctx, c, false)
}

// authenticateRead is authenticate for the read window of Part 2 (tracking,
// webhooks): its own per-token window (Settings.ReadRateLimit per rolling
// minute, shared by every replica), with §1's headers and 429, so reads
// never spend the sending budget.
func (a *API) authenticateRead(ctx context.Context, c *fiber.Ctx) (events.AuthReply, error) {
	return a.authenticateIn(ctx, c, true)
}

func (a *API) authenticateIn(ctx context.Context, c *fiber.Ctx, read bool) (events.AuthReply, error) {
	tok := c.Params("token")
	if !token.WellFormed(tok) {
		return events.AuthReply{}, apperr.ErrInvalidToken
	}
	auth, err := a.lookupToken(ctx, token.Digest(tok))
	if err != nil {
		return auth, err
	}
	var d ratelimit.Decision
	if read {
		d, err = a.limiter.AllowRead(ctx, auth.AccountID, a.set.ReadRateLimit)
	} else {
		d, err = a.limiter.Allow(ctx, auth.AccountID, auth.RateLimitPerMinute)
	}
	if err != nil {
		return auth, err
	}
	c.Set("X-RateLimit-Limit", strconv.Itoa(d.Limit))
	c.Set("X-RateLimit-Remaining", strconv.Itoa(d.Remaining))
	c.Set("X-RateLimit-Reset", strconv.Itoa(seconds(d.Reset)))
	if !d.Allowed {
		a.m.RateLimited.Inc()
		retry := max(seconds(d.Reset), 1)
		return auth, errRateLimited.With("retryAfter", retry).WithHeader("Retry-After", strconv.Itoa(retry))
	}
	return auth, nil
}

// lookupToken asks billing who holds the token of digest, or reuses its answer
// (authCache says why that is safe); concurrent misses of one token share
// one question.
func (a *API) lookupToken(ctx context.Context, digest string) (events.AuthReply, error) {
	now := time.Now()
	return a.auth.lookup(ctx, digest, timestamp.Month(now), now, func(ctx context.Context) (events.AuthReply, error) {
		return rpc.Call[events.AuthRequest, events.AuthReply](ctx, a.nc, a.names.BillingAuth(),
			events.AuthRequest{TokenDigest: digest}, rpc.Idempotent())
	})
}

// seconds rounds up to whole seconds.
func seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}

func (a *API) timeout(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), a.set.RequestTimeout)
}
