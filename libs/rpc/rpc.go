// Package rpc is typed request/reply over core NATS: JSON bodies, errors that
// keep their contract status and code across the wire, replicas sharing the
// load through a queue group, and handlers running concurrently.
package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/events"
)

// envelope is the reply: exactly one of Data and Err is set.
type envelope struct {
	Data json.RawMessage `json:"data,omitempty"`
	Err  *apperr.Error   `json:"err,omitempty"`
}

// DefaultTimeout bounds a handler when the request carries no deadline
// (a caller from before deadlines were sent), and a call whose context has
// none.
const DefaultTimeout = 10 * time.Second

// TimeoutHeader carries how long the caller waits for this attempt (in
// milliseconds, relative: no clock skew between hosts). The handler gives up
// a little before that and answers 503, so a caller that stopped waiting
// never leaves behind work it does not know about: a claim whose reply
// nobody reads would hand messages out to no phone.
const TimeoutHeader = "Apitosms-Timeout-Ms"

// CallOption adjusts one call.
type CallOption func(*callOptions)

type callOptions struct{ idempotent bool }

// Idempotent marks a call whose handler may run twice with the effect of
// once (a lookup; a report, where a status already applied is counted and
// not changed again). When its first attempt gets no answer in time, or
// answers 503, it is sent once more. Other calls are sent again only when no
// handler received them (no responders).
func Idempotent() CallOption { return func(o *callOptions) { o.idempotent = true } }

// Call sends req to subject and decodes the reply into Resp. An *apperr.Error
// returned by the handler comes back as the same *apperr.Error; no responder
// or a timeout is apperr.ErrUnavailable wrapped with the cause.
//
// Each attempt is bounded well below an HTTP request's timeout: an
// idempotent call's by broker.CallTimeout, another call's (a single attempt,
// which may do more work) by twice that. A request lost with a NATS node
// that died therefore fails after seconds, not after the whole request
// timeout.
func Call[Req, Resp any](ctx context.Context, nc *nats.Conn, subject string, req Req, opts ...CallOption) (Resp, error) {
	var zero Resp
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	body, err := events.Marshal(req)
	if err != nil {
		return zero, fmt.Errorf("encode %s request: %w", subject, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	bound := broker.CallTimeout()
	if !o.idempotent {
		bound *= 2
	}
	for attempt := 1; ; attempt++ {
		env, err := request(ctx, nc, subject, body, bound)
		var retry bool
		switch {
		case err == nil && env.Err == nil:
			if err := events.Unmarshal(env.Data, &zero); err != nil {
				return zero, fmt.Errorf("decode %s reply data: %w", subject, err)
			}
			return zero, nil
		case err == nil:
			retry = o.idempotent && env.Err.Status == http.StatusServiceUnavailable
			err = env.Err
		case errors.Is(err, nats.ErrNoResponders):
			retry = true // no handler got it: safe to send again, whatever it does
			err = fmt.Errorf("%s: %w: %w", subject, apperr.ErrUnavailable, err)
		case apperr.Unavailable(err):
			retry = o.idempotent
			err = fmt.Errorf("%s: %w: %w", subject, apperr.ErrUnavailable, err)
		default:
			err = fmt.Errorf("%s: %w", subject, err)
		}
		if !retry || attempt == 2 || ctx.Err() != nil {
			return zero, err
		}
		t := time.NewTimer(retryPause)
		select {
		case <-ctx.Done():
			t.Stop()
			return zero, err
		case <-t.C:
		}
	}
}

// retryPause is the wait before a second attempt: a reconnection to another
// NATS node (ReconnectWait 250 ms) or a responder's takes about that.
const retryPause = 200 * time.Millisecond

// request makes one attempt, bounded by bound, and decodes the envelope.
func request(ctx context.Context, nc *nats.Conn, subject string, body []byte, bound time.Duration) (envelope, error) {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	deadline, _ := ctx.Deadline()
	msg := nats.NewMsg(subject)
	msg.Data = body
	msg.Header.Set(TimeoutHeader, strconv.FormatInt(time.Until(deadline).Milliseconds(), 10))
	reply, err := nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return envelope{}, err
	}
	var env envelope
	if err := events.Unmarshal(reply.Data, &env); err != nil {
		return envelope{}, fmt.Errorf("decode %s reply: %w", subject, err)
	}
	return env, nil
}

// handlerBudget is how long a handler may work on m: a little less than its
// caller waits (a tenth, at least 50 ms, is left for the reply to travel),
// never more than DefaultTimeout.
func handlerBudget(m *nats.Msg) time.Duration {
	ms, err := strconv.ParseInt(m.Header.Get(TimeoutHeader), 10, 64)
	if err != nil || ms <= 0 {
		return DefaultTimeout
	}
	wait := time.Duration(ms) * time.Millisecond
	return min(wait-max(wait/10, 50*time.Millisecond), DefaultTimeout)
}

// Server answers requests on subjects for one service.
type Server struct {
	nc      *nats.Conn
	group   string
	log     *slog.Logger
	subs    []*nats.Subscription
	mu      sync.Mutex // guards closing and wg.Add
	closing bool
	wg      sync.WaitGroup // requests handed to workers and not answered yet
	work    chan func()
	stopped sync.Once     // closes work
	exited  chan struct{} // closed once every worker has returned
	ctx     context.Context
	cancel  context.CancelFunc
	handled *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

// Metrics of every rpc.Server of a process, registered once.
type Metrics struct {
	handled *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

// NewMetrics registers the rpc metrics of service svc on reg (promauto: it
// panics if they are there already, a wiring mistake).
func NewMetrics(reg prometheus.Registerer, svc string) *Metrics {
	f := promauto.With(prometheus.WrapRegistererWithPrefix("apitosms_"+svc+"_", reg))
	return &Metrics{
		handled: f.NewCounterVec(prometheus.CounterOpts{
			Name: "rpc_handled_total",
			Help: "Requests answered, by subject suffix and outcome (ok, client_error, error).",
		}, []string{"method", "outcome"}),
		seconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rpc_duration_seconds",
			Help:    "Time to answer a request.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 3, 11),
		}, []string{"method"}),
	}
}

// NewServer returns a server answering as a member of queue group group,
// with concurrency long-lived workers running handlers (a worker keeps its
// grown stack: database drivers' deep calls would otherwise make each new
// goroutine copy its stack several times).
func NewServer(nc *nats.Conn, group string, concurrency int, m *Metrics, log *slog.Logger) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		nc: nc, group: group, log: log,
		work: make(chan func(), concurrency), exited: make(chan struct{}),
		ctx: ctx, cancel: cancel,
		handled: m.handled, seconds: m.seconds,
	}
	var workers sync.WaitGroup
	for range max(concurrency, 1) {
		workers.Go(func() {
			for job := range s.work {
				job()
			}
		})
	}
	go func() { workers.Wait(); close(s.exited) }()
	return s
}

// Handle registers fn for subject; method names it in metrics and logs.
func Handle[Req, Resp any](s *Server, subject, method string, fn func(context.Context, Req) (Resp, error)) error {
	sub, err := s.nc.QueueSubscribe(subject, s.group, func(m *nats.Msg) {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			body, _ := events.Marshal(envelope{Err: apperr.ErrUnavailable})
			_ = m.Respond(body)
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		// The caller's clock starts now, not when a worker is free.
		deadline := time.Now().Add(handlerBudget(m))
		s.work <- func() {
			defer s.wg.Done()
			s.serve(m, method, deadline, func(ctx context.Context, data []byte) (any, error) {
				var req Req
				if err := events.Unmarshal(data, &req); err != nil {
					return nil, apperr.New(400, "bad_request", "malformed request")
				}
				return fn(ctx, req)
			})
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subject, err)
	}
	s.subs = append(s.subs, sub)
	return nil
}

func (s *Server) serve(m *nats.Msg, method string, deadline time.Time, fn func(context.Context, []byte) (any, error)) {
	start := time.Now()
	var env envelope
	outcome := "ok"
	func() {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("rpc handler panic", "method", method, "panic", r, "stack", string(debug.Stack()))
				env.Err, outcome = apperr.ErrInternal, "error"
			}
		}()
		if time.Until(deadline) <= 0 {
			// The caller has given up (or is about to): doing the work
			// now would leave an effect nobody is told about.
			env.Err, outcome = apperr.ErrUnavailable, "error"
			return
		}
		ctx, cancel := context.WithDeadline(s.ctx, deadline)
		defer cancel()
		resp, err := fn(ctx, m.Data)
		if err != nil {
			if e, ok := apperr.As(err); ok {
				env.Err = e
				outcome = "client_error"
				if e.Status >= 500 {
					outcome = "error"
				}
				return
			}
			if apperr.Unavailable(err) {
				// A dependency of the handler (its database, the
				// broker) did not answer: the caller may retry.
				s.log.Warn("rpc handler: dependency unavailable", "method", method, "err", err)
				env.Err, outcome = apperr.ErrUnavailable, "error"
				return
			}
			s.log.Error("rpc handler failed", "method", method, "err", err)
			env.Err, outcome = apperr.ErrInternal, "error"
			return
		}
		data, err := events.Marshal(resp)
		if err != nil {
			env.Err, outcome = apperr.ErrInternal, "error"
			return
		}
		env.Data = data
	}()
	body, _ := events.Marshal(env)
	if err := m.Respond(body); err != nil {
		s.log.Warn("rpc reply failed", "method", method, "err", err)
	}
	s.handled.WithLabelValues(method, outcome).Inc()
	s.seconds.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

// Close stops taking requests, lets running handlers finish (up to the
// context's deadline), then cancels what is left and returns. The workers
// exit once the last handler has returned (at once, or as soon as the
// cancelled ones do: none is left behind); Exited tells when.
func (s *Server) Close(ctx context.Context) {
	for _, sub := range s.subs {
		_ = sub.Drain()
	}
	for _, sub := range s.subs {
		for sub.IsValid() && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
	}
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	stop := func() { s.stopped.Do(func() { close(s.work) }) } // no sender is left: the workers exit
	select {
	case <-done:
		stop()
	case <-ctx.Done():
		go func() { <-done; stop() }() // ends when the cancelled handlers return
	}
	s.cancel()
}

// Exited is closed once Close was called and every worker has returned.
func (s *Server) Exited() <-chan struct{} { return s.exited }
