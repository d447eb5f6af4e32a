// Package stores is the stores service (contract §13): it keeps merchants'
// Shopify and WooCommerce connections, templates, opt-outs and decisions
// log; answers the stores and opt-outs requests ingress forwards; receives
// the shops' signed webhooks (/hooks/...) into the store-hooks stream; and
// turns each stored delivery into queued SMS from its durable consumer
// (stores-ingest), through billing and the accepted stream like the queue
// endpoint.
package stores

import (
	"context"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/config"
	"github.com/apitosms/apitosms/libs/consumer"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/hashid"
	"github.com/apitosms/apitosms/libs/keys"
	"github.com/apitosms/apitosms/libs/lifecycle"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/wiring"
	"github.com/apitosms/apitosms/services/stores/internal/httpapi"
	"github.com/apitosms/apitosms/services/stores/internal/ingest"
	"github.com/apitosms/apitosms/services/stores/internal/metrics"
	"github.com/apitosms/apitosms/services/stores/internal/rpcapi"
	"github.com/apitosms/apitosms/services/stores/internal/secret"
	"github.com/apitosms/apitosms/services/stores/internal/store"
)

// Config holds the stores service's settings.
type Config struct {
	PublicURL       string        // APITOSMS_PUBLIC_URL: base of each store's webhookUrl
	MaxStores       int           // APITOSMS_STORES_MAX: per account
	LogRetention    time.Duration // APITOSMS_STORES_LOG_RETENTION: decisions log kept this long (30 days)
	Dedupe          time.Duration // APITOSMS_STORES_DEDUPE: a platform delivery id is remembered this long (24 h)
	KeepOrders      time.Duration // APITOSMS_STORES_KEEP_ORDERS: send records and order memory kept this long
	Batch           int           // APITOSMS_STORES_INGEST_BATCH: deliveries per consumer batch
	RPCConcurrency  int           // APITOSMS_STORES_RPC_CONCURRENCY
	ShutdownTimeout time.Duration // APITOSMS_SHUTDOWN_TIMEOUT
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		PublicURL:       "http://localhost:8080",
		MaxStores:       20,
		LogRetention:    30 * 24 * time.Hour,
		Dedupe:          24 * time.Hour,
		KeepOrders:      90 * 24 * time.Hour,
		Batch:           128,
		RPCConcurrency:  16,
		ShutdownTimeout: 20 * time.Second,
	}
}

// LoadConfig reads APITOSMS_STORES_* variables, defaulting to DefaultConfig.
func LoadConfig(r *config.Reader, c config.Common) Config {
	d := DefaultConfig()
	if c.ShutdownTimeout > 0 {
		d.ShutdownTimeout = c.ShutdownTimeout
	}
	if c.PublicURL != "" {
		d.PublicURL = c.PublicURL
	}
	return Config{
		PublicURL:       d.PublicURL,
		MaxStores:       r.Int("APITOSMS_STORES_MAX", d.MaxStores),
		LogRetention:    r.Duration("APITOSMS_STORES_LOG_RETENTION", d.LogRetention),
		Dedupe:          r.Duration("APITOSMS_STORES_DEDUPE", d.Dedupe),
		KeepOrders:      r.Duration("APITOSMS_STORES_KEEP_ORDERS", d.KeepOrders),
		Batch:           r.Int("APITOSMS_STORES_INGEST_BATCH", d.Batch),
		RPCConcurrency:  r.Int("APITOSMS_STORES_RPC_CONCURRENCY", d.RPCConcurrency),
		ShutdownTimeout: d.ShutdownTimeout,
	}
}

// MaxHookBody bounds one shop delivery (bytes).
const MaxHookBody = 1 << 20

// Deps are what the service runs on.
type Deps struct {
	Broker     *broker.Broker
	DB         *bun.DB // the stores service's own database
	Names      events.Names
	Replicas   int // keys bucket replicas
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// Service is a configured stores service.
type Service struct {
	cfg         Config
	deps        Deps
	store       *store.Store
	api         *rpcapi.API
	hooks       *httpapi.Hooks
	proc        *ingest.Processor
	rpcMetrics  *rpc.Metrics
	consMetrics *consumer.Metrics
}

// New migrates the tables, loads the sealing and hash keys and registers the
// metrics; it starts nothing.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if err := wiring.Check("stores", deps); err != nil {
		return nil, err
	}
	deps.Log = wiring.Logger(deps.Log, "stores")
	d := DefaultConfig()
	wiring.Default(&cfg.MaxStores, d.MaxStores)
	wiring.Default(&cfg.Batch, d.Batch)
	wiring.Default(&cfg.RPCConcurrency, d.RPCConcurrency)
	wiring.Default(&cfg.LogRetention, d.LogRetention)
	wiring.Default(&cfg.Dedupe, d.Dedupe)
	wiring.Default(&cfg.KeepOrders, d.KeepOrders)
	wiring.Default(&cfg.ShutdownTimeout, d.ShutdownTimeout)
	if cfg.PublicURL == "" {
		cfg.PublicURL = d.PublicURL
	}
	if err := store.Migrate(ctx, deps.DB); err != nil {
		return nil, err
	}
	sealer, err := keys.LoadSealer(ctx, deps.Broker.JS, deps.Names.KeysBucket(), secret.KeyName, deps.Replicas)
	if err != nil {
		return nil, err
	}
	hashes, err := hashid.Load(ctx, deps.Broker.JS, deps.Names.KeysBucket(), deps.Replicas)
	if err != nil {
		return nil, err
	}
	st := store.New(deps.DB)
	m := metrics.New(deps.Registerer)
	rm := rpc.NewMetrics(deps.Registerer, "stores")
	cm := consumer.NewMetrics(deps.Registerer, "stores")
	// A shop's delivery travels as one stream message: at most 1 MiB, and
	// never more than the broker takes (less room for the headers).
	maxBody := min(MaxHookBody, int(deps.Broker.Conn.MaxPayload())-4096)
	hooks := httpapi.New(st, sealer, deps.Broker.JS, deps.Names, m, deps.Log, maxBody)
	return &Service{
		cfg: cfg, deps: deps, store: st,
		api:        rpcapi.New(st, sealer, rpcapi.Settings{PublicURL: cfg.PublicURL, MaxStores: cfg.MaxStores}, hooks.Forget),
		hooks:      hooks,
		proc:       ingest.New(st, deps.Broker.Conn, deps.Broker.JS, deps.Names, hashes, m, deps.Log),
		rpcMetrics: rm, consMetrics: cm,
	}, nil
}

// Routes mounts the receiving endpoints POST /hooks/shopify/{id} and
// POST /hooks/woocommerce/{id}.
func (s *Service) Routes(r fiber.Router) { s.hooks.Routes(r) }

// Run answers the stores requests (queue group stores), processes stored
// deliveries and sweeps old records until ctx is done; then it stops
// taking requests, finishes the batch in hand (bounded by ShutdownTimeout;
// an unfinished delivery is redelivered and resumed) and returns nil.
func (s *Service) Run(ctx context.Context) error {
	srv := rpc.NewServer(s.deps.Broker.Conn, events.GroupStores, s.cfg.RPCConcurrency, s.rpcMetrics, s.deps.Log)
	n := s.deps.Names
	for _, err := range []error{
		rpc.Handle(srv, n.StoresCreate(), "create", s.api.Create),
		rpc.Handle(srv, n.StoresList(), "list", s.api.List),
		rpc.Handle(srv, n.StoresGet(), "get", s.api.Get),
		rpc.Handle(srv, n.StoresUpdate(), "update", s.api.Update),
		rpc.Handle(srv, n.StoresDelete(), "delete", s.api.Delete),
		rpc.Handle(srv, n.StoresPreview(), "preview", s.api.Preview),
		rpc.Handle(srv, n.StoresLog(), "log", s.api.Log),
		rpc.Handle(srv, n.OptOutsList(), "optouts-list", s.api.OptOutsList),
		rpc.Handle(srv, n.OptOutsAdd(), "optouts-add", s.api.OptOutsAdd),
		rpc.Handle(srv, n.OptOutsRemove(), "optouts-remove", s.api.OptOutsRemove),
	} {
		if err != nil {
			srv.Close(ctx)
			return err
		}
	}
	// The receiving endpoints' group commit runs until the HTTP intake has
	// stopped (the process stops it before services), then drains; the
	// consumer stops after the batch in hand (an unfinished delivery is
	// redelivered and resumed).
	return lifecycle.New("stores", s.cfg.ShutdownTimeout, s.deps.Log).
		Intake(srv).
		Go("sweep", s.sweep).
		// Two publishes in flight: one gathers while the other syncs. Four
		// made smaller groups (more fsyncs and stream messages per
		// delivery): 0.77x CPU per order with two (docs/benchmarks.md).
		Go("hooks group commit", func(ctx context.Context) { s.hooks.Run(ctx, 2) }).
		Consume(s.deps.Broker.JS, consumer.Config{
			Stream:     n.StoreHooksStream(),
			Durable:    events.DurableStoresIngest,
			DeadLetter: n.DeadLetterSubject(events.DurableStoresIngest),
			Batch:      s.cfg.Batch,
			Linger:     2 * time.Millisecond,
			MaxDeliver: 20,
		}, s.proc.Handle, s.consMetrics).
		Run(ctx)
}

// sweep removes old log entries, dedupe records, send records and orders
// every few minutes.
func (s *Service) sweep(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		now := time.Now()
		n, err := s.store.Sweep(ctx, store.Ms(now.Add(-s.cfg.LogRetention)), store.Ms(now.Add(-s.cfg.Dedupe)),
			store.Ms(now.Add(-s.cfg.KeepOrders)))
		if err != nil && ctx.Err() == nil {
			s.deps.Log.Warn("stores sweep", "err", err)
		} else if n > 0 {
			s.deps.Log.Info("stores sweep", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Ready reports whether the service's database answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }
