// Package consumer runs a durable JetStream pull consumer in batches: it
// hands a batch to a handler, acks it when the handler succeeds, retries with
// back-off when it fails, isolates a poison message by retrying the batch one
// message at a time, and after MaxDeliver attempts moves a message to a
// dead-letter subject and terminates it. Handlers must be idempotent:
// JetStream delivers at least once.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/apitosms/apitosms/libs/broker"
)

// Handler processes a batch as a whole: it returns nil only when every
// message's effect is durable.
type Handler func(ctx context.Context, batch []jetstream.Msg) error

// Config describes one consumer.
type Config struct {
	Stream     string
	Durable    string
	DeadLetter string        // subject for messages given up on
	Batch      int           // most messages per handler call
	Linger     time.Duration // how long to wait for the next message of a batch (from the latest one)
	// Window, when set, replaces Linger: once a batch's first message is in
	// hand, the batch takes every message that arrives within Window of it
	// (and whatever is already fetched), up to Batch. A steady trickle, each
	// message a few milliseconds after the last, then shares one handler
	// call (one transaction) per Window instead of one per message, and no
	// message waits longer than Window for its batch to start.
	Window time.Duration
	// Hurry, with a Window, ends a batch's window early when a reader in
	// this process waits for the consumer (CatchUp with the same Hurry).
	Hurry      *Hurry
	MaxDeliver uint64 // attempts before dead-lettering
}

// Metrics of the consumers of one service.
type Metrics struct {
	processed *prometheus.CounterVec
	batches   *prometheus.HistogramVec
	failures  *prometheus.CounterVec
	dead      *prometheus.CounterVec
	pending   *pendingCollector
}

// NewMetrics registers consumer metrics of service svc on reg (promauto: it
// panics if they are there already, a wiring mistake).
func NewMetrics(reg prometheus.Registerer, svc string) *Metrics {
	reg = prometheus.WrapRegistererWithPrefix("apitosms_"+svc+"_", reg)
	f := promauto.With(reg)
	m := &Metrics{
		processed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "consumer_messages_total",
			Help: "Stream messages processed and acked, by durable consumer.",
		}, []string{"durable"}),
		batches: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "consumer_batch_seconds",
			Help:    "Time to process one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 3, 10),
		}, []string{"durable"}),
		failures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "consumer_failures_total",
			Help: "Handler failures (the messages are retried).",
		}, []string{"durable"}),
		dead: f.NewCounterVec(prometheus.CounterOpts{
			Name: "consumer_dead_letters_total",
			Help: "Messages moved to the dead-letter subject.",
		}, []string{"durable"}),
		pending: &pendingCollector{
			desc: prometheus.NewDesc("consumer_pending_messages",
				"Stream messages not yet processed and acked by the durable consumer (its lag), read from JetStream at scrape time.",
				[]string{"durable"}, nil),
			consumers: map[string]jetstream.Consumer{},
		},
	}
	reg.MustRegister(m.pending)
	return m
}

// Run consumes until ctx is cancelled, then finishes the batch in hand and
// returns nil; fetched messages not yet in a batch are left to redelivery. The stream and durable must exist (events.EnsureStreams).
func Run(ctx context.Context, js jetstream.JetStream, cfg Config, h Handler, m *Metrics, log *slog.Logger) error {
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 2 * time.Millisecond
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = 10
	}
	var cons jetstream.Consumer
	if err := broker.Ensure(ctx, "consumer "+cfg.Durable, func(ctx context.Context) (err error) {
		cons, err = js.Consumer(ctx, cfg.Stream, cfg.Durable)
		return err
	}); err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(cfg.Batch * 2))
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.Durable, err)
	}
	m.pending.add(cfg.Durable, cons)
	// Series exist from the start (at 0), so rates and alerts on failures
	// and dead letters see them before the first one happens.
	m.processed.WithLabelValues(cfg.Durable)
	m.failures.WithLabelValues(cfg.Durable)
	m.dead.WithLabelValues(cfg.Durable)
	defer m.pending.remove(cfg.Durable)
	// On cancel, stop at once: messages fetched but not handed to the handler
	// yet stay unacknowledged and are redelivered (to another replica, or
	// after a restart), so shutdown never waits on a buffer of work.
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			it.Stop()
		case <-stopped:
		}
	}()
	defer close(stopped)
	defer it.Stop()
	r := runner{js: js, cfg: cfg, h: h, m: m, log: log.With("durable", cfg.Durable)}
	// Work in hand is finished even after ctx is cancelled.
	work := context.WithoutCancel(ctx)
	batch := make([]jetstream.Msg, 0, cfg.Batch)
	pause := time.Duration(0) // back-off after iterator errors
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return nil
			}
			// A broker restart, a leader election, missed heartbeats: the
			// iterator recovers by itself; back off meanwhile instead of
			// spinning (and logging) as fast as the errors come.
			pause = min(max(2*pause, 10*time.Millisecond), iteratorMaxPause)
			r.log.Warn("consumer next", "err", err, "retry_in", pause)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(pause):
			}
			continue
		}
		pause = 0
		batch = append(batch[:0], msg)
		batch = r.fill(it, batch)
		r.process(work, batch)
	}
}

// fill adds to batch, up to Batch, what arrives within Linger of its latest
// message or, with a Window, within Window of its first one (or until a
// reader hurries it), then whatever is already fetched.
func (r *runner) fill(it jetstream.MessagesContext, batch []jetstream.Msg) []jetstream.Msg {
	if r.cfg.Window <= 0 {
		for len(batch) < r.cfg.Batch {
			more, err := it.Next(jetstream.NextMaxWait(r.cfg.Linger))
			if err != nil {
				return batch
			}
			batch = append(batch, more)
		}
		return batch
	}
	window, cancel := context.WithTimeout(r.cfg.Hurry.asked(), r.cfg.Window)
	defer cancel()
	for len(batch) < r.cfg.Batch {
		more, err := it.Next(jetstream.NextContext(window))
		if err != nil {
			break
		}
		batch = append(batch, more)
	}
	// The window is over: take what the iterator already holds, without
	// waiting for more.
	for len(batch) < r.cfg.Batch {
		more, err := it.Next(jetstream.NextMaxWait(afterWindow))
		if err != nil {
			break
		}
		batch = append(batch, more)
	}
	return batch
}

// afterWindow is the wait for the next message once a batch's Window has
// passed: long enough to take messages already fetched (they are in the
// iterator's buffer), too short to wait for new ones.
const afterWindow = 100 * time.Microsecond

// iteratorMaxPause bounds the back-off after consecutive iterator errors.
const iteratorMaxPause = 5 * time.Second

type runner struct {
	js  jetstream.JetStream
	cfg Config
	h   Handler
	m   *Metrics
	log *slog.Logger
}

func (r *runner) process(ctx context.Context, batch []jetstream.Msg) {
	start := time.Now()
	err := r.call(ctx, batch)
	r.m.batches.WithLabelValues(r.cfg.Durable).Observe(time.Since(start).Seconds())
	if err == nil {
		r.ackAll(batch)
		return
	}
	r.m.failures.WithLabelValues(r.cfg.Durable).Inc()
	r.log.Warn("batch failed; retrying one by one", "size", len(batch), "err", err)
	for _, msg := range batch {
		err := r.call(ctx, []jetstream.Msg{msg})
		if err == nil {
			r.ackAll([]jetstream.Msg{msg})
			continue
		}
		r.fail(ctx, msg, err)
	}
}

func (r *runner) call(ctx context.Context, batch []jetstream.Msg) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panic: %v\n%s", p, debug.Stack())
		}
	}()
	return r.h(ctx, batch)
}

func (r *runner) ackAll(batch []jetstream.Msg) {
	for _, msg := range batch {
		if err := msg.Ack(); err != nil {
			// The message will be redelivered; handlers are idempotent.
			r.log.Warn("ack failed", "err", err)
		}
	}
	r.m.processed.WithLabelValues(r.cfg.Durable).Add(float64(len(batch)))
}

func (r *runner) fail(ctx context.Context, msg jetstream.Msg, cause error) {
	meta, err := msg.Metadata()
	delivered := uint64(1)
	if err == nil {
		delivered = meta.NumDelivered
	}
	if delivered >= r.cfg.MaxDeliver && r.cfg.DeadLetter != "" {
		dl := nats.NewMsg(r.cfg.DeadLetter)
		dl.Data = msg.Data()
		dl.Header.Set("Apitosms-Error", truncate(cause.Error(), 512))
		if meta != nil {
			dl.Header.Set("Apitosms-Stream-Seq", fmt.Sprint(meta.Sequence.Stream))
		}
		if _, err := r.js.PublishMsg(ctx, dl); err != nil {
			r.log.Error("dead-letter publish failed; will retry", "err", err)
			_ = msg.NakWithDelay(backoff(delivered))
			return
		}
		r.m.dead.WithLabelValues(r.cfg.Durable).Inc()
		r.log.Error("message dead-lettered", "deliveries", delivered, "err", cause)
		_ = msg.Term()
		return
	}
	r.log.Warn("message failed; will retry", "deliveries", delivered, "err", cause)
	_ = msg.NakWithDelay(backoff(delivered))
}

// pendingCollector reports each running consumer's lag: the stream messages
// it has not acked yet (not delivered, or delivered and in hand).
type pendingCollector struct {
	desc      *prometheus.Desc
	mu        sync.Mutex
	consumers map[string]jetstream.Consumer
}

func (p *pendingCollector) add(durable string, c jetstream.Consumer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.consumers[durable] = c
}

func (p *pendingCollector) remove(durable string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.consumers, durable)
}

func (p *pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }

// Collect asks JetStream for each consumer's state; a consumer whose state
// cannot be read within a second is left out of this scrape.
func (p *pendingCollector) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	consumers := make(map[string]jetstream.Consumer, len(p.consumers))
	for d, c := range p.consumers {
		consumers[d] = c
	}
	p.mu.Unlock()
	for durable, c := range consumers {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := c.Info(ctx)
		cancel()
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(p.desc, prometheus.GaugeValue,
			float64(info.NumPending+uint64(info.NumAckPending)), durable)
	}
}

func backoff(delivered uint64) time.Duration {
	d := 100 * time.Millisecond << min(delivered, 8)
	return min(d, 30*time.Second)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
