// Package billing owns accounts, their API token digests, subscriptions and
// monthly usage. Over NATS it answers auth (who owns a token), reserve (take
// from this month's quota, group committed) and release (give back); over
// HTTP it serves the operator's account endpoints.
package billing

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/config"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/wiring"
	"github.com/apitosms/apitosms/services/billing/internal/changes"
	"github.com/apitosms/apitosms/services/billing/internal/httpapi"
	"github.com/apitosms/apitosms/services/billing/internal/metrics"
	"github.com/apitosms/apitosms/services/billing/internal/rpcapi"
	"github.com/apitosms/apitosms/services/billing/internal/store"
)

// Config holds billing's settings.
type Config struct {
	AdminToken      string        // bearer token of the operator API; empty disables it (a secret)
	RPCConcurrency  int           // APITOSMS_BILLING_RPC_CONCURRENCY: handlers running at once
	GroupCommitMax  int           // APITOSMS_BILLING_GROUP_COMMIT_MAX: reservations per transaction
	CommitTimeout   time.Duration // APITOSMS_BILLING_COMMIT_TIMEOUT: bound of one group commit
	ShutdownTimeout time.Duration // time in-flight requests get to finish at shutdown
	Replicas        int           // bucket replicas (from APITOSMS_STREAM_REPLICAS)
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		RPCConcurrency:  256,
		GroupCommitMax:  64,
		CommitTimeout:   5 * time.Second,
		ShutdownTimeout: 20 * time.Second,
		Replicas:        1,
	}
}

// LoadConfig reads billing's settings (APITOSMS_BILLING_...) over the defaults.
func LoadConfig(r *config.Reader, c config.Common) Config {
	d := DefaultConfig()
	cfg := Config{
		AdminToken:      c.AdminToken,
		RPCConcurrency:  r.Int("APITOSMS_BILLING_RPC_CONCURRENCY", d.RPCConcurrency),
		GroupCommitMax:  r.Int("APITOSMS_BILLING_GROUP_COMMIT_MAX", d.GroupCommitMax),
		CommitTimeout:   r.Duration("APITOSMS_BILLING_COMMIT_TIMEOUT", d.CommitTimeout),
		ShutdownTimeout: d.ShutdownTimeout,
		Replicas:        c.Replicas,
	}
	if c.ShutdownTimeout > 0 {
		cfg.ShutdownTimeout = c.ShutdownTimeout
	}
	return cfg
}

// Deps are the shared resources billing uses.
type Deps struct {
	Broker     *broker.Broker
	DB         *bun.DB // billing's own database
	Names      events.Names
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// Service is a billing replica. Replicas share the database and split
// requests through the NATS queue group events.GroupBilling.
type Service struct {
	cfg        Config
	deps       Deps
	store      *store.Store
	reserver   *rpcapi.Reserver
	quota      *rpcapi.QuotaEvents
	api        *rpcapi.API
	admin      *httpapi.Admin
	rpcMetrics *rpc.Metrics
	changed    *changes.Notifier
}

// New migrates billing's tables and registers its metrics; it starts nothing.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if err := wiring.Check("billing", deps); err != nil {
		return nil, err
	}
	deps.Log = wiring.Logger(deps.Log, "billing")
	d := DefaultConfig()
	wiring.Default(&cfg.RPCConcurrency, d.RPCConcurrency)
	wiring.Default(&cfg.GroupCommitMax, d.GroupCommitMax)
	wiring.Default(&cfg.CommitTimeout, d.CommitTimeout)
	wiring.Default(&cfg.ShutdownTimeout, d.ShutdownTimeout)
	st := store.New(deps.DB)
	if err := st.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("billing: %w", err)
	}
	m := metrics.New(deps.Registerer)
	rm := rpc.NewMetrics(deps.Registerer, "billing")
	quota := rpcapi.NewQuotaEvents(deps.Broker.JS, deps.Names, st, m, deps.Log)
	res := rpcapi.NewReserver(st, quota, cfg.GroupCommitMax, cfg.CommitTimeout, m.ObserveBatch)
	changed := changes.New(deps.Broker.Conn, deps.Names, m.ChangesUnacknowledged, deps.Log)
	return &Service{
		cfg: cfg, deps: deps, store: st, reserver: res, quota: quota,
		api: rpcapi.New(st, res, m, changed), admin: httpapi.New(st, changed, inviter(deps)), rpcMetrics: rm,
		changed: changed,
	}, nil
}

// Run answers billing's requests until ctx is done, then stops taking new
// ones, lets those in flight finish (up to the shutdown timeout) and returns nil.
func (s *Service) Run(ctx context.Context) error {
	defer s.reserver.Close() // after the requests in flight are answered
	// Known before the first change is answered: the ingress replicas that
	// must acknowledge it.
	if err := s.changed.Watch(ctx, s.deps.Broker.JS, s.cfg.Replicas); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("billing: %w", err)
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayed := make(chan struct{})
	go func() { defer close(relayed); s.quota.Relay(relayCtx, rpcapi.QuotaRelayInterval) }()
	defer func() { stopRelay(); <-relayed }()

	srv := rpc.NewServer(s.deps.Broker.Conn, events.GroupBilling, s.cfg.RPCConcurrency, s.rpcMetrics, s.deps.Log)
	closeSrv := func() {
		c, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		srv.Close(c)
	}
	if err := s.api.Register(srv, s.deps.Names); err != nil {
		closeSrv()
		return fmt.Errorf("billing: %w", err)
	}
	<-ctx.Done()
	closeSrv()
	return nil
}

// Ready reports whether billing's database answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

// Routes mounts the operator's account endpoints under /admin/v1.
func (s *Service) Routes(r fiber.Router) { s.admin.Routes(r, s.cfg.AdminToken) }

// inviter asks the console (which owns merchant credentials) for an invite
// link; without a console replica running the request fails as unavailable.
func inviter(deps Deps) httpapi.Inviter {
	return func(ctx context.Context, account int64, email string) (events.InviteReply, error) {
		return rpc.Call[events.InviteRequest, events.InviteReply](ctx, deps.Broker.Conn, deps.Names.ConsoleInvite(),
			events.InviteRequest{AccountID: account, Email: email})
	}
}
