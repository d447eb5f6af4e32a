// Package queue is the queue service: it owns the messages table (pending and
// handed-out SMS), ingests accepted batches from the accepted stream, hands
// messages to phones oldest first over the QueueClaim RPC, and retires
// messages the status service reported final. It is also the read model of
// message tracking (contract §9): lookups, history and cancels.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/config"
	"github.com/apitosms/apitosms/libs/consumer"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/hashid"
	"github.com/apitosms/apitosms/libs/lifecycle"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/wiring"
	"github.com/apitosms/apitosms/services/queue/internal/ingest"
	"github.com/apitosms/apitosms/services/queue/internal/metrics"
	"github.com/apitosms/apitosms/services/queue/internal/notify"
	"github.com/apitosms/apitosms/services/queue/internal/rpcapi"
	"github.com/apitosms/apitosms/services/queue/internal/store"
	"github.com/apitosms/apitosms/services/queue/internal/sweep"
)

// Config holds the queue service's settings.
type Config struct {
	// ClaimWaitTimeout bounds how long a claim (or a report) waits for
	// ingestion to catch up with the accepted stream before answering
	// unavailable. APITOSMS_QUEUE_CLAIM_WAIT_TIMEOUT.
	ClaimWaitTimeout time.Duration
	// RPCConcurrency is the most claims answered at once. APITOSMS_QUEUE_RPC_CONCURRENCY.
	RPCConcurrency int
	// IngestBatch is the most stream messages stored in one transaction.
	// APITOSMS_QUEUE_INGEST_BATCH.
	IngestBatch int
	// IngestLinger is how long an ingest batch fills after its first
	// message (the longest a message waits for its transaction to start).
	// APITOSMS_QUEUE_INGEST_LINGER.
	IngestLinger time.Duration
	// ReportedBatch is the most report messages applied in one transaction.
	// APITOSMS_QUEUE_REPORTED_BATCH.
	ReportedBatch int
	// MaxDeliver is the attempts before a message is dead-lettered.
	// APITOSMS_QUEUE_MAX_DELIVER.
	MaxDeliver int
	// ClaimConfirmTimeout is how long a claim whose caller promised to
	// confirm it (ingress, once the answer is written) waits for that ack;
	// after it, its messages still initiated go back to new at their FIFO
	// place. Keep it well above the ingress request timeout.
	// APITOSMS_CLAIM_CONFIRM_TIMEOUT.
	ClaimConfirmTimeout time.Duration
	// ClaimSweepInterval is how often expired claims are looked for.
	// APITOSMS_CLAIM_SWEEP_INTERVAL.
	ClaimSweepInterval time.Duration
	// ShutdownTimeout bounds finishing in-flight work after Run's context
	// ends. APITOSMS_SHUTDOWN_TIMEOUT.
	ShutdownTimeout time.Duration
	// Retention is how long a final message (sent, failed, expired,
	// cancelled) is kept for tracking before it is removed.
	// APITOSMS_RETENTION: a Go duration ("720h") or whole days ("30d").
	Retention time.Duration
	// KeepText keeps a message's text once final; false blanks it.
	// APITOSMS_KEEP_TEXT (true or false).
	KeepText bool
	// SweepInterval is how often retention and pending quota refunds are
	// swept. APITOSMS_QUEUE_SWEEP_INTERVAL.
	SweepInterval time.Duration
	// Replicas is the replica count of the deployment's keys bucket (the
	// hash key message events name messages by). APITOSMS_STREAM_REPLICAS.
	Replicas int
	// PhoneOfflineAfter is how long a phone may stay silent (no pull, no
	// report naming its device) before it counts as offline (contract §11).
	// APITOSMS_PHONE_OFFLINE_AFTER.
	PhoneOfflineAfter time.Duration
	// BacklogInterval is how often the backlog gauges (waiting, initiated,
	// oldest waiting) are counted. APITOSMS_QUEUE_BACKLOG_INTERVAL.
	BacklogInterval time.Duration

	invalid error // a malformed setting LoadConfig found; New returns it
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		ClaimWaitTimeout: 5 * time.Second,
		RPCConcurrency:   256,
		IngestBatch:      16,
		IngestLinger:     20 * time.Millisecond,
		ReportedBatch:    100,
		MaxDeliver:       10,
		ShutdownTimeout:  20 * time.Second,
		Retention:        30 * 24 * time.Hour,
		KeepText:         true,
		SweepInterval:    time.Minute,

		PhoneOfflineAfter: 10 * time.Minute,
		BacklogInterval:   15 * time.Second,

		ClaimConfirmTimeout: 30 * time.Second,
		ClaimSweepInterval:  5 * time.Second,
	}
}

// LoadConfig reads APITOSMS_QUEUE_* variables, defaulting to DefaultConfig.
func LoadConfig(r *config.Reader, c config.Common) Config {
	d := DefaultConfig()
	if c.ShutdownTimeout > 0 {
		d.ShutdownTimeout = c.ShutdownTimeout
	}
	cfg := Config{
		ClaimWaitTimeout: r.Duration("APITOSMS_QUEUE_CLAIM_WAIT_TIMEOUT", d.ClaimWaitTimeout),
		RPCConcurrency:   r.Int("APITOSMS_QUEUE_RPC_CONCURRENCY", d.RPCConcurrency),
		IngestBatch:      r.Int("APITOSMS_QUEUE_INGEST_BATCH", d.IngestBatch),
		IngestLinger:     r.Duration("APITOSMS_QUEUE_INGEST_LINGER", d.IngestLinger),
		ReportedBatch:    r.Int("APITOSMS_QUEUE_REPORTED_BATCH", d.ReportedBatch),
		MaxDeliver:       r.Int("APITOSMS_QUEUE_MAX_DELIVER", d.MaxDeliver),
		ShutdownTimeout:  d.ShutdownTimeout,
		SweepInterval:    r.Duration("APITOSMS_QUEUE_SWEEP_INTERVAL", d.SweepInterval),
		Replicas:         max(c.Replicas, 1),

		PhoneOfflineAfter: r.Duration("APITOSMS_PHONE_OFFLINE_AFTER", d.PhoneOfflineAfter),
		BacklogInterval:   r.Duration("APITOSMS_QUEUE_BACKLOG_INTERVAL", d.BacklogInterval),

		ClaimConfirmTimeout: r.Duration("APITOSMS_CLAIM_CONFIRM_TIMEOUT", d.ClaimConfirmTimeout),
		ClaimSweepInterval:  r.Duration("APITOSMS_CLAIM_SWEEP_INTERVAL", d.ClaimSweepInterval),
	}
	var errs []error
	var err error
	if cfg.Retention, err = parseRetention(r.String("APITOSMS_RETENTION", "")); err != nil {
		errs = append(errs, err)
	}
	if cfg.KeepText, err = parseKeepText(r.String("APITOSMS_KEEP_TEXT", "")); err != nil {
		errs = append(errs, err)
	}
	cfg.invalid = errors.Join(errs...)
	return cfg
}

// Deps are what the queue service needs from the process.
type Deps struct {
	Broker     *broker.Broker
	DB         *bun.DB // the queue's own database
	Reader     *bun.DB // optional read-only pool on DB for tracking reads (database.OpenReader)
	Names      events.Names
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// Service is the queue service.
type Service struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	store *store.Store
	m     *metrics.Metrics
	tm    *metrics.Tracking
	bm    *metrics.Backlog
	cm    *consumer.Metrics
	rm    *rpc.Metrics
	// startup and serving make Ready wait until claims are answered at once:
	// the consumers have processed what the streams held at start, and Run
	// answers claims.
	startup *consumer.Startup
	serving atomic.Bool
	notify  *notify.Notifier // message events (contract §10)
}

// New migrates the messages table and registers metrics; it starts nothing.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if err := wiring.Check("queue", deps, "Reader"); err != nil {
		return nil, err
	}
	if cfg.invalid != nil {
		return nil, fmt.Errorf("queue: %w", cfg.invalid)
	}
	d := DefaultConfig()
	wiring.Default(&cfg.ClaimWaitTimeout, d.ClaimWaitTimeout)
	wiring.Default(&cfg.RPCConcurrency, d.RPCConcurrency)
	wiring.Default(&cfg.ShutdownTimeout, d.ShutdownTimeout)
	wiring.Default(&cfg.ClaimConfirmTimeout, d.ClaimConfirmTimeout)
	wiring.Default(&cfg.ClaimSweepInterval, d.ClaimSweepInterval)
	wiring.Default(&cfg.PhoneOfflineAfter, d.PhoneOfflineAfter)
	wiring.Default(&cfg.BacklogInterval, d.BacklogInterval)
	if cfg.Retention <= 0 {
		return nil, errors.New("queue: APITOSMS_RETENTION must be positive")
	}
	if cfg.SweepInterval <= 0 {
		return nil, errors.New("queue: APITOSMS_QUEUE_SWEEP_INTERVAL must be positive")
	}
	log := wiring.Logger(deps.Log, "queue")
	st := store.New(deps.DB)
	if err := st.Migrate(ctx); err != nil {
		return nil, err
	}
	st.UseReader(deps.Reader)
	st.SetKeepText(cfg.KeepText)
	m := metrics.New(deps.Registerer)
	cm := consumer.NewMetrics(deps.Registerer, "queue")
	rm := rpc.NewMetrics(deps.Registerer, "queue")
	tm := metrics.NewTracking(deps.Registerer)
	bm := metrics.NewBacklog(deps.Registerer)
	startup, err := consumer.NewStartup(ctx, deps.Broker.JS,
		consumer.Watch{Stream: deps.Names.AcceptedStream(), Durable: events.DurableQueueIngest},
		consumer.Watch{Stream: deps.Names.ReportedStream(), Durable: events.DurableQueueReported})
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	hashes, err := hashid.Load(ctx, deps.Broker.JS, deps.Names.KeysBucket(), cfg.Replicas)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	return &Service{cfg: cfg, deps: deps, log: log, store: st, m: m, tm: tm, bm: bm, cm: cm, rm: rm, startup: startup,
		notify: notify.New(deps.Broker.JS, deps.Names, hashes, deps.Broker.Conn.MaxPayload())}, nil
}

// Run answers claims on Names.QueueClaim() and tracking requests (lookup,
// history, cancel), closes the claims acknowledged on Names.QueueClaimAck(),
// sweeps claims nobody acknowledged in time back to new, consumes the
// accepted and reported streams and sweeps (retention, quota refunds of
// cancelled messages) until ctx ends. It then stops taking claims, lets
// those in flight finish, closes the claims already acknowledged, stops the
// consumers after the batches in hand, all within ShutdownTimeout, and
// returns nil. It returns an error if it cannot start or
// a consumer fails fatally.
func (s *Service) Run(ctx context.Context) error {
	js, n := s.deps.Broker.JS, s.deps.Names
	wait, err := consumer.NewCatchUp(ctx, js, n.AcceptedStream(), events.DurableQueueIngest, s.cfg.ClaimWaitTimeout)
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	// A claim waiting for the accepted stream cuts this process's ingest
	// window short, so read-your-writes does not pay IngestLinger.
	hurry := new(consumer.Hurry)
	wait.HurryWith(hurry)
	// Tracking (contract §9) reads the messages table once the reports
	// published before the request are applied too.
	reportsIn, err := consumer.NewCatchUp(ctx, js, n.ReportedStream(), events.DurableQueueReported, s.cfg.ClaimWaitTimeout)
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	// Message events only for accounts with a subscribed endpoint
	// (notify.Subscriptions); set before anything publishes.
	subs, err := notify.NewSubscriptions(s.deps.Broker.Conn, n, s.log)
	if err != nil {
		return fmt.Errorf("queue: webhook subscriptions: %w", err)
	}
	s.notify.OnlySubscribed(subs, s.tm)
	s.store.RememberHandOuts(s.notify.MayTell)
	claims := s.store.NewClaimGroup(s.m.ClaimGroup)
	defer claims.Close() // after the claims in flight are answered
	srv := rpc.NewServer(s.deps.Broker.Conn, events.GroupQueue, s.cfg.RPCConcurrency, s.rm, s.log)
	// Tracking has workers of its own: lookups waiting for the consumers
	// never hold up claims.
	trackSrv := rpc.NewServer(s.deps.Broker.Conn, events.GroupQueue, max(s.cfg.RPCConcurrency/4, 4), s.rm, s.log)
	sweeper := sweep.New(s.store, s.deps.Broker.Conn, n, s.notify, s.cfg.Retention, s.cfg.SweepInterval, s.tm, s.log)
	err = errors.Join(
		rpcapi.NewClaims(claims, wait, s.m, s.cfg.ClaimConfirmTimeout).
			PublishInitiated(notify.NewInitiated(s.notify, s.store)).Register(srv, n),
		rpcapi.NewTracking(s.store, wait, reportsIn, sweeper, s.tm, s.deps.Broker.Conn.MaxPayload()).Register(trackSrv, n),
		rpcapi.NewSettings(s.store).Register(trackSrv, n), // lease settings (§12)
		rpcapi.NewPhones(s.store, s.cfg.PhoneOfflineAfter).Register(trackSrv, n),
	)
	var acks *rpcapi.Acks
	if err == nil {
		acks, err = rpcapi.StartAcks(s.deps.Broker.Conn, n, claims, s.m, s.log)
	}
	if err != nil {
		srv.Close(ctx)
		trackSrv.Close(ctx)
		return fmt.Errorf("queue: %w", err)
	}
	accepted := ingest.NewAccepted(s.store, s.m, s.log)
	reported := ingest.NewReported(claims, wait, s.notify, s.m, s.log)
	// The claims, tracking requests and acks drain first (claims wait for
	// ingestion), then the sweeps end (a sweep in hand is rolled back: it
	// is one transaction), then the consumers stop after the batches in
	// hand; the subscriptions outlive them, as they publish.
	r := lifecycle.New("queue", s.cfg.ShutdownTimeout, s.log).
		Intake(srv, trackSrv, acks).
		Go("claim sweep", func(ctx context.Context) {
			sweep.RunClaims(ctx, s.store, s.cfg.ClaimSweepInterval, s.m, s.log)
		}).
		Go("retention sweep", sweeper.Run).
		Go("phones sweep", func(ctx context.Context) {
			sweep.RunPhones(ctx, s.store, s.notify, s.cfg.PhoneOfflineAfter, sweep.PhoneCheckInterval(s.cfg.PhoneOfflineAfter), s.log)
		}).
		Go("backlog", func(ctx context.Context) {
			sweep.RunBacklog(ctx, s.store, s.bm, s.cfg.BacklogInterval, s.cfg.PhoneOfflineAfter, s.log)
		}).
		Support("webhook subscriptions", subs.Run).
		Consume(js, s.ingestConfig(n, hurry), accepted.Handle, s.cm).
		Consume(js, s.consumerConfig(n.ReportedStream(), events.DurableQueueReported, s.cfg.ReportedBatch, 0), reported.Handle, s.cm).
		Finally(func() {
			if err := accepted.Close(); err != nil {
				s.log.Warn("close ingest statements", "err", err)
			}
		})
	s.serving.Store(true)
	defer s.serving.Store(false)
	s.log.Info("queue started", "claim_subject", n.QueueClaim())
	return r.Run(ctx)
}

func (s *Service) consumerConfig(stream, durable string, batch int, linger time.Duration) consumer.Config {
	return consumer.Config{
		Stream:     stream,
		Durable:    durable,
		DeadLetter: s.deps.Names.DeadLetterSubject(durable),
		Batch:      batch,
		Linger:     linger,
		MaxDeliver: uint64(max(s.cfg.MaxDeliver, 1)),
	}
}

// ingestConfig is the accepted stream's consumer: a batch takes what
// arrives within IngestLinger of its first message, so one-message requests
// arriving a few milliseconds apart share an insert transaction.
func (s *Service) ingestConfig(n events.Names, hurry *consumer.Hurry) consumer.Config {
	c := s.consumerConfig(n.AcceptedStream(), events.DurableQueueIngest, s.cfg.IngestBatch, 0)
	c.Window = s.cfg.IngestLinger
	c.Hurry = hurry
	return c
}

// Ready reports whether the queue answers claims at once: Run is serving,
// its database answers, and its consumers have processed what the streams
// held when the service started (after a crash, a batch the dead process
// held is redelivered only after the consumer's AckWait; until then every
// claim would wait and answer unavailable).
func (s *Service) Ready(ctx context.Context) error {
	if !s.serving.Load() {
		return errors.New("queue: not serving yet")
	}
	if err := s.store.Ping(ctx); err != nil {
		return err
	}
	return s.startup.Ready(ctx)
}

// parseRetention reads APITOSMS_RETENTION: a Go duration ("720h") or whole
// days ("30d"); empty means the default.
func parseRetention(v string) (time.Duration, error) {
	if v == "" {
		return DefaultConfig().Retention, nil
	}
	bad := fmt.Errorf("APITOSMS_RETENTION: %q is not a positive duration (e.g. 30d or 720h)", v)
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 36500 {
			return 0, bad
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, bad
	}
	return d, nil
}

// parseKeepText reads APITOSMS_KEEP_TEXT; empty means true.
func parseKeepText(v string) (bool, error) {
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return true, fmt.Errorf("APITOSMS_KEEP_TEXT: %q is not true or false", v)
	}
	return b, nil
}
