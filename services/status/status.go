// Package status is the status service: it owns delivery outcomes. It
// records every accepted SMS from the accepted stream (durable consumer
// status-ingest) and applies phones' delivery reports over the StatusApply
// RPC, announcing each change on the reported stream so the queue service
// never hands a finished message out again.
package status

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/config"
	"github.com/apitosms/apitosms/libs/consumer"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/lifecycle"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/wiring"
	"github.com/apitosms/apitosms/services/status/internal/apply"
	"github.com/apitosms/apitosms/services/status/internal/ingest"
	"github.com/apitosms/apitosms/services/status/internal/metrics"
	"github.com/apitosms/apitosms/services/status/internal/store"
)

// Config holds the status service's settings.
type Config struct {
	IngestBatch      int           // APITOSMS_STATUS_INGEST_BATCH: most accepted events per ingest transaction
	IngestLinger     time.Duration // APITOSMS_STATUS_INGEST_LINGER: how long an ingest batch fills after its first message
	IngestMaxDeliver int           // APITOSMS_STATUS_INGEST_MAX_DELIVER: attempts before an event is dead-lettered
	RPCConcurrency   int           // APITOSMS_STATUS_RPC_CONCURRENCY: status requests handled at once
	CatchUpTimeout   time.Duration // APITOSMS_STATUS_CATCHUP_TIMEOUT: read-your-writes wait before answering unavailable
	OutboxInterval   time.Duration // APITOSMS_STATUS_OUTBOX_INTERVAL: how often the outbox relay looks for unpublished events
	OutboxAge        time.Duration // APITOSMS_STATUS_OUTBOX_AGE: age from which the relay publishes an event (longer than a request's own publish)
	ShutdownTimeout  time.Duration // APITOSMS_SHUTDOWN_TIMEOUT: bound on finishing in-flight work at stop
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		IngestBatch:      16,
		IngestLinger:     20 * time.Millisecond,
		IngestMaxDeliver: 10,
		RPCConcurrency:   256,
		CatchUpTimeout:   5 * time.Second,
		OutboxInterval:   time.Second,
		OutboxAge:        10 * time.Second,
		ShutdownTimeout:  20 * time.Second,
	}
}

// LoadConfig reads APITOSMS_STATUS_* variables, defaulting to DefaultConfig.
func LoadConfig(r *config.Reader, c config.Common) Config {
	d := DefaultConfig()
	if c.ShutdownTimeout > 0 {
		d.ShutdownTimeout = c.ShutdownTimeout
	}
	return Config{
		IngestBatch:      r.Int("APITOSMS_STATUS_INGEST_BATCH", d.IngestBatch),
		IngestLinger:     r.Duration("APITOSMS_STATUS_INGEST_LINGER", d.IngestLinger),
		IngestMaxDeliver: r.Int("APITOSMS_STATUS_INGEST_MAX_DELIVER", d.IngestMaxDeliver),
		RPCConcurrency:   r.Int("APITOSMS_STATUS_RPC_CONCURRENCY", d.RPCConcurrency),
		CatchUpTimeout:   r.Duration("APITOSMS_STATUS_CATCHUP_TIMEOUT", d.CatchUpTimeout),
		OutboxInterval:   r.Duration("APITOSMS_STATUS_OUTBOX_INTERVAL", d.OutboxInterval),
		OutboxAge:        r.Duration("APITOSMS_STATUS_OUTBOX_AGE", d.OutboxAge),
		ShutdownTimeout:  d.ShutdownTimeout,
	}
}

// Deps are what the service runs on.
type Deps struct {
	Broker     *broker.Broker
	DB         *bun.DB // the status service's own database
	Names      events.Names
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// Service is a configured status service.
type Service struct {
	cfg         Config
	deps        Deps
	store       *store.Store
	ingester    *ingest.Ingester
	applier     *apply.Applier
	rpcMetrics  *rpc.Metrics
	consMetrics *consumer.Metrics
	// startup and serving make Ready wait until reports are answered at
	// once (see Ready).
	startup *consumer.Startup
	serving atomic.Bool
	// hurry lets a report waiting for the ingest consumer cut its window short.
	hurry *consumer.Hurry
}

// New migrates the deliveries table and registers the metrics; it starts
// nothing.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if err := wiring.Check("status", deps); err != nil {
		return nil, err
	}
	deps.Log = wiring.Logger(deps.Log, "status")
	d := DefaultConfig()
	wiring.Default(&cfg.IngestBatch, d.IngestBatch)
	wiring.Default(&cfg.RPCConcurrency, d.RPCConcurrency)
	wiring.Default(&cfg.CatchUpTimeout, d.CatchUpTimeout)
	wiring.Default(&cfg.ShutdownTimeout, d.ShutdownTimeout)
	wiring.Default(&cfg.OutboxInterval, d.OutboxInterval)
	wiring.Default(&cfg.OutboxAge, d.OutboxAge)
	if err := store.Migrate(ctx, deps.DB); err != nil {
		return nil, err
	}
	m := metrics.New(deps.Registerer)
	rm := rpc.NewMetrics(deps.Registerer, "status")
	cm := consumer.NewMetrics(deps.Registerer, "status")
	catchUp, err := consumer.NewCatchUp(ctx, deps.Broker.JS, deps.Names.AcceptedStream(), events.DurableStatusIngest, cfg.CatchUpTimeout)
	if err != nil {
		return nil, err
	}
	hurry := new(consumer.Hurry)
	catchUp.HurryWith(hurry)
	startup, err := consumer.NewStartup(ctx, deps.Broker.JS,
		consumer.Watch{Stream: deps.Names.AcceptedStream(), Durable: events.DurableStatusIngest})
	if err != nil {
		return nil, err
	}
	st := store.New(deps.DB)
	return &Service{
		cfg: cfg, deps: deps, store: st, startup: startup, hurry: hurry,
		ingester:   ingest.New(st, m),
		applier:    apply.New(st, deps.Broker.JS, deps.Names, catchUp, m, deps.Log, reportedPublishers(deps.Broker.Embedded())),
		rpcMetrics: rm, consMetrics: cm,
	}, nil
}

// Run answers StatusApply requests (queue group status) and consumes the
// accepted stream until ctx is done; then it stops taking requests, finishes
// those in flight and the ingest batch in hand (bounded by ShutdownTimeout)
// and returns nil. It returns an error if the consumer cannot run.
func (s *Service) Run(ctx context.Context) error {
	defer s.applier.Stop()
	srv := rpc.NewServer(s.deps.Broker.Conn, events.GroupStatus, s.cfg.RPCConcurrency, s.rpcMetrics, s.deps.Log)
	if err := rpc.Handle(srv, s.deps.Names.StatusApply(), "apply", s.applier.Apply); err != nil {
		srv.Close(ctx)
		return err
	}
	// The consumer outlives ctx until the requests in flight, which may wait
	// for ingestion (read-your-writes), are answered: stopping it first
	// would make a clean shutdown answer them 503. Once they are, the relay
	// has ended and what they published is deleted from the outbox.
	r := lifecycle.New("status", s.cfg.ShutdownTimeout, s.deps.Log).
		Intake(srv).
		Go("outbox relay", func(ctx context.Context) {
			s.applier.Relay(ctx, s.cfg.OutboxInterval, s.cfg.OutboxAge)
		}).
		AfterDrain(s.applier.Flush).
		Consume(s.deps.Broker.JS, consumer.Config{
			Stream:     s.deps.Names.AcceptedStream(),
			Durable:    events.DurableStatusIngest,
			DeadLetter: s.deps.Names.DeadLetterSubject(events.DurableStatusIngest),
			Batch:      s.cfg.IngestBatch,
			Window:     s.cfg.IngestLinger,
			Hurry:      s.hurry,
			MaxDeliver: uint64(max(s.cfg.IngestMaxDeliver, 1)),
		}, s.ingester.Handle, s.consMetrics)
	s.serving.Store(true)
	defer s.serving.Store(false)
	return r.Run(ctx)
}

// Ready reports whether reports are answered at once: Run is serving, the
// database answers, and the ingest consumer has processed what the accepted
// stream held when the service started (after a crash, a batch the dead
// process held is redelivered only after the consumer's AckWait; until then
// a report naming those messages would wait and answer unavailable).
func (s *Service) Ready(ctx context.Context) error {
	if !s.serving.Load() {
		return errors.New("status: not serving yet")
	}
	if err := s.store.Ping(ctx); err != nil {
		return err
	}
	return s.startup.Ready(ctx)
}

// reportedPublishers is how many reported-stream publishes may be in flight
// at once, each carrying the events of the requests committed meanwhile.
// On the embedded server one: the stream stores one message at a time, each
// with its own fsync, so a second publish would only wait behind the first
// and cost a message of its own (as with ingress's publishLoops). On an
// external NATS a publish is a network round trip during which others can
// travel, and PostgreSQL commits four groups at once: four.
func reportedPublishers(embedded bool) int {
	if embedded {
		return 1
	}
	return 4
}
