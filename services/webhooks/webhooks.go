// Package webhooks is the webhooks service (contract §10): it keeps
// merchants' webhook endpoints, answers the webhooks requests ingress
// forwards, fans the notify stream's events out to the matching endpoints
// (durable webhooks-fanout) and delivers them per Standard Webhooks v1, with
// retries, from its own tables.
package webhooks

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/config"
	"github.com/apitosms/apitosms/libs/consumer"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/keys"
	"github.com/apitosms/apitosms/libs/lifecycle"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/wiring"
	"github.com/apitosms/apitosms/services/webhooks/internal/deliver"
	"github.com/apitosms/apitosms/services/webhooks/internal/guard"
	"github.com/apitosms/apitosms/services/webhooks/internal/ingest"
	"github.com/apitosms/apitosms/services/webhooks/internal/metrics"
	"github.com/apitosms/apitosms/services/webhooks/internal/rpcapi"
	"github.com/apitosms/apitosms/services/webhooks/internal/secret"
	"github.com/apitosms/apitosms/services/webhooks/internal/store"
)

// Config holds the webhooks service's settings.
type Config struct {
	AllowPrivate    bool            // APITOSMS_WEBHOOK_ALLOW_PRIVATE=true: plain http and private addresses allowed
	PerEndpoint     int             // APITOSMS_WEBHOOK_ENDPOINT_CONCURRENCY: POSTs in flight per endpoint and process
	Workers         int             // APITOSMS_WEBHOOK_WORKERS: POSTs in flight per process
	Timeout         time.Duration   // APITOSMS_WEBHOOK_TIMEOUT: one POST (contract: a 2xx within 10 s)
	RetrySchedule   []time.Duration // APITOSMS_WEBHOOK_RETRY_SCHEDULE: comma list of waits; the last repeats
	DisableAfter    time.Duration   // APITOSMS_WEBHOOK_DISABLE_AFTER: failing this long disables (contract: 3 days)
	RotationOverlap time.Duration   // APITOSMS_WEBHOOK_ROTATION_OVERLAP: old secret keeps signing (contract: 24 h)
	MaxEndpoints    int             // APITOSMS_WEBHOOK_MAX_ENDPOINTS: per account
	BatchSize       int             // APITOSMS_WEBHOOK_BATCH_SIZE: events per POST to a batch endpoint (contract: 500)
	Poll            time.Duration   // APITOSMS_WEBHOOK_POLL: look for due retries at least this often
	LogRetention    time.Duration   // APITOSMS_WEBHOOK_LOG_RETENTION: deliveries log kept this long
	IngestBatch     int             // APITOSMS_WEBHOOK_INGEST_BATCH: events per fan-out transaction
	IngestLinger    time.Duration   // APITOSMS_WEBHOOK_INGEST_LINGER: how long a fan-out batch fills after its first stream message
	RPCConcurrency  int             // APITOSMS_WEBHOOK_RPC_CONCURRENCY
	ShutdownTimeout time.Duration   // APITOSMS_SHUTDOWN_TIMEOUT
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		PerEndpoint:     4,
		Workers:         256,
		Timeout:         10 * time.Second,
		RetrySchedule:   deliver.DefaultSchedule,
		DisableAfter:    72 * time.Hour,
		RotationOverlap: 24 * time.Hour,
		MaxEndpoints:    20,
		BatchSize:       500,
		Poll:            time.Second,
		LogRetention:    7 * 24 * time.Hour,
		IngestBatch:     256,
		IngestLinger:    20 * time.Millisecond,
		RPCConcurrency:  16,
		ShutdownTimeout: 20 * time.Second,
	}
}

// LoadConfig reads APITOSMS_WEBHOOK_* variables, defaulting to DefaultConfig.
func LoadConfig(r *config.Reader, c config.Common) Config {
	d := DefaultConfig()
	if c.ShutdownTimeout > 0 {
		d.ShutdownTimeout = c.ShutdownTimeout
	}
	cfg := Config{
		AllowPrivate:    r.Bool("APITOSMS_WEBHOOK_ALLOW_PRIVATE", false),
		PerEndpoint:     r.Int("APITOSMS_WEBHOOK_ENDPOINT_CONCURRENCY", d.PerEndpoint),
		Workers:         r.Int("APITOSMS_WEBHOOK_WORKERS", d.Workers),
		Timeout:         r.Duration("APITOSMS_WEBHOOK_TIMEOUT", d.Timeout),
		RetrySchedule:   d.RetrySchedule,
		DisableAfter:    r.Duration("APITOSMS_WEBHOOK_DISABLE_AFTER", d.DisableAfter),
		RotationOverlap: r.Duration("APITOSMS_WEBHOOK_ROTATION_OVERLAP", d.RotationOverlap),
		MaxEndpoints:    r.Int("APITOSMS_WEBHOOK_MAX_ENDPOINTS", d.MaxEndpoints),
		BatchSize:       r.Int("APITOSMS_WEBHOOK_BATCH_SIZE", d.BatchSize),
		Poll:            r.Duration("APITOSMS_WEBHOOK_POLL", d.Poll),
		LogRetention:    r.Duration("APITOSMS_WEBHOOK_LOG_RETENTION", d.LogRetention),
		IngestBatch:     r.Int("APITOSMS_WEBHOOK_INGEST_BATCH", d.IngestBatch),
		IngestLinger:    r.Duration("APITOSMS_WEBHOOK_INGEST_LINGER", d.IngestLinger),
		RPCConcurrency:  r.Int("APITOSMS_WEBHOOK_RPC_CONCURRENCY", d.RPCConcurrency),
		ShutdownTimeout: d.ShutdownTimeout,
	}
	if s := r.String("APITOSMS_WEBHOOK_RETRY_SCHEDULE", ""); s != "" {
		var list []time.Duration
		for _, part := range strings.Split(s, ",") {
			v, err := time.ParseDuration(strings.TrimSpace(part))
			if err != nil || v <= 0 {
				list = nil
				break
			}
			list = append(list, v)
		}
		if list == nil {
			// Reported through the reader like any malformed variable.
			r.Duration("APITOSMS_WEBHOOK_RETRY_SCHEDULE", 0)
		} else {
			cfg.RetrySchedule = list
		}
	}
	return cfg
}

// Deps are what the service runs on.
type Deps struct {
	Broker     *broker.Broker
	DB         *bun.DB // the webhooks service's own database
	Names      events.Names
	Replicas   int // keys bucket replicas
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// Service is a configured webhooks service.
type Service struct {
	cfg         Config
	deps        Deps
	store       *store.Store
	api         *rpcapi.API
	ingester    *ingest.Ingester
	dispatcher  *deliver.Dispatcher
	rpcMetrics  *rpc.Metrics
	consMetrics *consumer.Metrics
}

// New migrates the tables, loads the secret-sealing key and registers the
// metrics; it starts nothing.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if err := wiring.Check("webhooks", deps); err != nil {
		return nil, err
	}
	deps.Log = wiring.Logger(deps.Log, "webhooks")
	d := DefaultConfig()
	wiring.Default(&cfg.PerEndpoint, d.PerEndpoint)
	wiring.Default(&cfg.Workers, d.Workers)
	wiring.Default(&cfg.MaxEndpoints, d.MaxEndpoints)
	wiring.Default(&cfg.BatchSize, d.BatchSize)
	cfg.BatchSize = min(cfg.BatchSize, 500)
	wiring.Default(&cfg.IngestBatch, d.IngestBatch)
	wiring.Default(&cfg.RPCConcurrency, d.RPCConcurrency)
	wiring.Default(&cfg.Timeout, d.Timeout)
	wiring.Default(&cfg.DisableAfter, d.DisableAfter)
	wiring.Default(&cfg.RotationOverlap, d.RotationOverlap)
	wiring.Default(&cfg.Poll, d.Poll)
	wiring.Default(&cfg.LogRetention, d.LogRetention)
	wiring.Default(&cfg.ShutdownTimeout, d.ShutdownTimeout)
	if len(cfg.RetrySchedule) == 0 {
		cfg.RetrySchedule = d.RetrySchedule
	}
	if err := store.Migrate(ctx, deps.DB); err != nil {
		return nil, err
	}
	sealer, err := keys.LoadSealer(ctx, deps.Broker.JS, deps.Names.KeysBucket(), secret.KeyName, deps.Replicas)
	if err != nil {
		return nil, err
	}
	st := store.New(deps.DB)
	m := metrics.New(deps.Registerer, st.Backlog)
	rm := rpc.NewMetrics(deps.Registerer, "webhooks")
	cm := consumer.NewMetrics(deps.Registerer, "webhooks")
	g := guard.New(cfg.AllowPrivate)
	disp := deliver.New(deliver.Config{
		PerEndpoint: cfg.PerEndpoint, Workers: cfg.Workers, Timeout: cfg.Timeout,
		Schedule: cfg.RetrySchedule, DisableAfter: cfg.DisableAfter, BatchSize: cfg.BatchSize, Poll: cfg.Poll,
	}, st, sealer, g, m, deps.Log)
	return &Service{
		cfg: cfg, deps: deps, store: st,
		api: rpcapi.New(st, sealer, g, deps.Broker.Conn, deps.Broker.JS, deps.Names, rpcapi.Settings{
			MaxEndpoints: cfg.MaxEndpoints, RotationOverlap: cfg.RotationOverlap,
		}, disp.Wake, deps.Log),
		ingester:   ingest.New(st, m, disp, cfg.BatchSize),
		dispatcher: disp,
		rpcMetrics: rm, consMetrics: cm,
	}, nil
}

// Run answers the webhooks requests (queue group webhooks), fans out the
// notify stream and delivers until ctx is done; then it stops taking
// requests and events, lets POSTs in flight finish (bounded by
// ShutdownTimeout; an unfinished one is sent again after its lease) and
// returns nil. It returns an error if the consumer cannot run.
func (s *Service) Run(ctx context.Context) error {
	srv := rpc.NewServer(s.deps.Broker.Conn, events.GroupWebhooks, s.cfg.RPCConcurrency, s.rpcMetrics, s.deps.Log)
	n := s.deps.Names
	for _, err := range []error{
		rpc.Handle(srv, n.WebhooksCreate(), "create", s.api.Create),
		rpc.Handle(srv, n.WebhooksList(), "list", s.api.List),
		rpc.Handle(srv, n.WebhooksGet(), "get", s.api.Get),
		rpc.Handle(srv, n.WebhooksUpdate(), "update", s.api.Update),
		rpc.Handle(srv, n.WebhooksDelete(), "delete", s.api.Delete),
		rpc.Handle(srv, n.WebhooksRotate(), "rotate", s.api.Rotate),
		rpc.Handle(srv, n.WebhooksTest(), "test", s.api.Test),
		rpc.Handle(srv, n.WebhooksDeliveries(), "deliveries", s.api.Deliveries),
		rpc.Handle(srv, n.WebhooksSubscriptions(), "subscriptions", s.api.Subscriptions),
	} {
		if err != nil {
			srv.Close(ctx)
			return err
		}
	}
	// Requests drain first, then POSTs in flight finish (an unfinished one
	// is sent again after its lease), then the fan-out consumer stops after
	// the batch in hand.
	return lifecycle.New("webhooks", s.cfg.ShutdownTimeout, s.deps.Log).
		Intake(srv).
		Go("dispatcher", s.dispatcher.Run).
		Go("sweep", s.sweep).
		Consume(s.deps.Broker.JS, consumer.Config{
			Stream:     n.NotifyStream(),
			Durable:    events.DurableWebhooksFanout,
			DeadLetter: n.DeadLetterSubject(events.DurableWebhooksFanout),
			Batch:      s.cfg.IngestBatch,
			// A window from the first message, as the queue's and status's
			// ingest: a drain's reports (one stream message per phone
			// report, ~10 ms apart) share a transaction and its fsync.
			Window:     s.cfg.IngestLinger,
			MaxDeliver: 10,
		}, s.ingester.Handle, s.consMetrics).
		Run(ctx)
}

// sweep removes old log rows (and old events of disabled endpoints) every
// few minutes.
func (s *Service) sweep(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		n, err := s.store.Sweep(ctx, store.Ms(time.Now().Add(-s.cfg.LogRetention)))
		if err != nil && ctx.Err() == nil {
			s.deps.Log.Warn("webhooks sweep", "err", err)
		} else if n > 0 {
			s.deps.Log.Info("webhooks sweep", "removed", n)
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
