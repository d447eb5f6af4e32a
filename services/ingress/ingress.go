// Package ingress is the public edge of the SMS queue: the token endpoints
// queue, get_messages and status (contract §1-§4). It owns no tables; it owns
// the shared rate-limit windows and the Idempotency-Key memory (NATS
// key-value buckets) and publishes accepted messages to the accepted stream.
package ingress

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/config"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/hashid"
	"github.com/apitosms/apitosms/libs/wiring"
	"github.com/apitosms/apitosms/services/ingress/internal/httpapi"
	"github.com/apitosms/apitosms/services/ingress/internal/idempotency"
	"github.com/apitosms/apitosms/services/ingress/internal/metrics"
	"github.com/apitosms/apitosms/services/ingress/internal/publish"
	"github.com/apitosms/apitosms/services/ingress/internal/ratelimit"
	"github.com/apitosms/apitosms/services/ingress/internal/reserve"
)

// Config holds the ingress settings.
type Config struct {
	MaxBatch         int           // APITOSMS_INGRESS_MAX_BATCH: items per request (contract: 1000)
	MaxBodyBytes     int           // APITOSMS_INGRESS_MAX_BODY_BYTES (contract: 8 MiB)
	RequestTimeout   time.Duration // APITOSMS_INGRESS_REQUEST_TIMEOUT
	IdempotencyLease time.Duration // APITOSMS_INGRESS_IDEMPOTENCY_LEASE: how long a crashed request blocks its key
	Replicas         int           // bucket replicas (from APITOSMS_STREAM_REPLICAS)
	ReadRateLimit    int           // APITOSMS_READ_RATE_LIMIT: requests per rolling minute in a token's read window (tracking)
	AuthCacheTTL     time.Duration // APITOSMS_INGRESS_AUTH_CACHE_TTL: how long a token lookup is reused; 0 turns the cache off
}

// DefaultConfig returns the contract's limits.
func DefaultConfig() Config {
	return Config{
		MaxBatch:         1000,
		MaxBodyBytes:     8 << 20,
		RequestTimeout:   15 * time.Second,
		IdempotencyLease: 30 * time.Second,
		Replicas:         1,
		ReadRateLimit:    httpapi.DefaultReadRateLimit,
		AuthCacheTTL:     5 * time.Second,
	}
}

// LoadConfig reads the ingress settings from the environment.
func LoadConfig(r *config.Reader, c config.Common) Config {
	d := DefaultConfig()
	return Config{
		MaxBatch:         r.Int("APITOSMS_INGRESS_MAX_BATCH", d.MaxBatch),
		MaxBodyBytes:     r.Int("APITOSMS_INGRESS_MAX_BODY_BYTES", d.MaxBodyBytes),
		RequestTimeout:   r.Duration("APITOSMS_INGRESS_REQUEST_TIMEOUT", d.RequestTimeout),
		IdempotencyLease: r.Duration("APITOSMS_INGRESS_IDEMPOTENCY_LEASE", d.IdempotencyLease),
		Replicas:         c.Replicas,
		ReadRateLimit:    r.Int("APITOSMS_READ_RATE_LIMIT", d.ReadRateLimit),
		AuthCacheTTL:     r.DurationOrZero("APITOSMS_INGRESS_AUTH_CACHE_TTL", d.AuthCacheTTL),
	}
}

// Deps are what ingress runs on.
type Deps struct {
	Broker     *broker.Broker
	Names      events.Names
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// Service is a running ingress.
type Service struct {
	api       *httpapi.API
	publisher *publish.Publisher
	reserver  *reserve.Reserver
	broker    *broker.Broker
}

// New opens the rate-limit, idempotency and keys buckets.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if err := wiring.Check("ingress", deps); err != nil {
		return nil, err
	}
	if cfg.ReadRateLimit < 1 {
		return nil, fmt.Errorf("ingress: APITOSMS_READ_RATE_LIMIT must be at least 1, got %d", cfg.ReadRateLimit)
	}
	limiter, err := ratelimit.Open(ctx, deps.Broker.JS, deps.Names.RateLimitBucket(), cfg.Replicas)
	if err != nil {
		return nil, err
	}
	idem, err := idempotency.Open(ctx, deps.Broker.JS, deps.Names.IdempotencyBucket(), cfg.Replicas, cfg.IdempotencyLease)
	if err != nil {
		return nil, err
	}
	hashes, err := hashid.Load(ctx, deps.Broker.JS, deps.Names.KeysBucket(), cfg.Replicas)
	if err != nil {
		return nil, err
	}
	pub := publish.New(deps.Broker.JS, deps.Names.AcceptedSubject(), deps.Broker.Conn.MaxPayload())
	res := reserve.New(deps.Broker.Conn, deps.Names)
	api, err := httpapi.New(deps.Broker.Conn, deps.Names, limiter, idem, pub, res, hashes, httpapi.Settings{
		MaxBatch:       cfg.MaxBatch,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		RequestTimeout: cfg.RequestTimeout,
		ReadRateLimit:  cfg.ReadRateLimit,
		AuthCacheTTL:   cfg.AuthCacheTTL,
	}, metrics.New(deps.Registerer), wiring.Logger(deps.Log, "ingress"))
	if err != nil {
		return nil, err
	}
	if api.CachesLookups() {
		presence, err := broker.EnsureKeyValue(ctx, deps.Broker.JS, events.IngressCachesConfig(deps.Names, cfg.Replicas))
		if err == nil {
			err = api.Announce(ctx, presence)
		}
		if err != nil {
			api.Close()
			return nil, fmt.Errorf("ingress: token cache presence: %w", err)
		}
	}
	return &Service{api: api, publisher: pub, reserver: res, broker: deps.Broker}, nil
}

// Routes mounts the token endpoints.
func (s *Service) Routes(r fiber.Router) { s.api.Routes(r) }

// Run publishes coalesced small requests and sends coalesced quota
// reservations until ctx is done (the process stops HTTP intake first), then
// sends and publishes what is still waiting.
//
// It also sends the phones seen (contract §11) to the queue service every
// few seconds, and once more when ctx ends.
func (s *Service) Run(ctx context.Context) error {
	phones := make(chan struct{})
	go func() { defer close(phones); s.api.RunPhones(ctx, 5*time.Second) }()
	reserved := make(chan struct{})
	go func() { defer close(reserved); s.reserver.Run(ctx, reserveLoops) }()
	s.publisher.Run(ctx, publishLoops(s.broker.Embedded()))
	<-reserved
	<-phones
	s.api.Close()
	return nil
}

// publishLoops is how many coalesced publishes may be in flight at once.
// On the embedded server (all-in-one): one, for the reason reserveLoops is
// one. That stream stores its messages one at a time, each with its own
// fsync (and, once both consumers acked it, its own tombstone), so a second
// publish in flight only waits behind the first and then costs a stream
// message of its own. With four loops a one-message-per-request load made
// one stream message per 9 SMS; with one, per 17, and 0.78-0.88 of the
// server's CPU per request (docs/benchmarks.md, session 6 h4). On an
// external NATS each publish is a network round trip, during which more
// publishes can be on their way: four, as before, since one was not shown
// to help there (1.06-1.07 in two noisy pairs).
func publishLoops(embedded bool) int {
	if embedded {
		return 1
	}
	return 4
}

// reserveLoops is how many coalesced billing reservations may be in flight
// at once: one. Billing applies one transaction at a time, so a second call
// in flight would only wait for the first one's transaction and then get one
// of its own (two transactions, two fsyncs, where one would hold both). With
// one, the reservations arriving during a call's round trip and transaction
// all go in the next.
const reserveLoops = 1

// Ready reports whether the broker answers.
func (s *Service) Ready(ctx context.Context) error { return s.broker.Ready(ctx) }
