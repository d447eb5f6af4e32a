// Package lifecycle is the one start/stop sequence of a service made of
// request handlers (rpc servers, acks subscriptions), stream consumers and
// background loops. Handlers may wait on the consumers (read-your-writes: a
// claim waits until ingestion caught up with the stream), so a clean
// shutdown stops them in this order, all within one budget:
//
//  1. intake: every Intake is closed at once; requests in flight finish;
//  2. loops started with Go (their context ended with Run's) are waited for;
//  3. AfterDrain hooks run (flush what the handlers left, e.g. an outbox);
//  4. consumers are cancelled (they finish the batch in hand) and waited for;
//  5. Finally hooks run, only if every consumer stopped in time;
//  6. loops started with Support (used by the consumers, e.g. a
//     subscription they publish through) are cancelled and waited for.
//
// A consumer that stops on its own (an error, or nil while Run's context is
// live) is fatal: the same sequence runs and Run returns its error.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/consumer"
)

// Intake takes requests; Close stops taking new ones and lets those in
// flight finish until ctx ends (rpc.Server and the queue's claim acks).
type Intake interface {
	Close(ctx context.Context)
}

// IntakeFunc adapts a function to Intake.
type IntakeFunc func(ctx context.Context)

// Close calls f.
func (f IntakeFunc) Close(ctx context.Context) { f(ctx) }

// Runner holds the parts of one service; configure it, then call Run once.
type Runner struct {
	name   string
	budget time.Duration
	log    *slog.Logger

	intakes    []Intake
	loops      []loop
	support    []loop
	afterDrain []func(context.Context)
	consumers  []consumerRun
	finally    []func()
}

type loop struct {
	name string
	fn   func(context.Context)
}

type consumerRun struct {
	js  jetstream.JetStream
	cfg consumer.Config
	h   consumer.Handler
	m   *consumer.Metrics
}

// New returns a Runner for service name whose shutdown takes at most budget
// (a budget of 0 or less means 20 s).
func New(name string, budget time.Duration, log *slog.Logger) *Runner {
	if budget <= 0 {
		budget = 20 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	return &Runner{name: name, budget: budget, log: log}
}

// Intake adds request intakes, closed first at shutdown (together).
func (r *Runner) Intake(in ...Intake) *Runner {
	r.intakes = append(r.intakes, in...)
	return r
}

// Go adds a background loop run until Run's context ends; shutdown waits
// for it after the intake has drained.
func (r *Runner) Go(name string, fn func(ctx context.Context)) *Runner {
	r.loops = append(r.loops, loop{name, fn})
	return r
}

// Support adds a loop the consumers rely on: it runs until the consumers
// have stopped.
func (r *Runner) Support(name string, fn func(ctx context.Context)) *Runner {
	r.support = append(r.support, loop{name, fn})
	return r
}

// AfterDrain adds a hook run once the intake has drained and the Go loops
// returned, before the consumers stop; ctx ends with the budget.
func (r *Runner) AfterDrain(fn func(ctx context.Context)) *Runner {
	r.afterDrain = append(r.afterDrain, fn)
	return r
}

// Consume adds a durable consumer (consumer.Run), stopped after the intake
// has drained.
func (r *Runner) Consume(js jetstream.JetStream, cfg consumer.Config, h consumer.Handler, m *consumer.Metrics) *Runner {
	r.consumers = append(r.consumers, consumerRun{js: js, cfg: cfg, h: h, m: m})
	return r
}

// Finally adds a hook run after every consumer stopped (release what their
// handlers hold); it is skipped when they did not stop within the budget.
func (r *Runner) Finally(fn func()) *Runner {
	r.finally = append(r.finally, fn)
	return r
}

// Run starts the loops and consumers, waits until ctx ends or a consumer
// stops on its own, then stops everything in the package's order within
// the budget. It returns nil after a clean shutdown, or the fatal
// consumer's error.
func (r *Runner) Run(ctx context.Context) error {
	supportCtx, stopSupport := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSupport()
	supported := start(supportCtx, r.support)

	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	looped := start(loopCtx, r.loops)

	// Consumers outlive ctx until the handlers that may wait on them have
	// answered: stopping them first would fail requests on a clean shutdown.
	consCtx, stopConsumers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsumers()
	done := make(chan error, len(r.consumers))
	for _, c := range r.consumers {
		go func() {
			err := consumer.Run(consCtx, c.js, c.cfg, c.h, c.m, r.log)
			if err == nil && consCtx.Err() == nil {
				err = errors.New("stopped unexpectedly")
			}
			if err != nil {
				err = fmt.Errorf("%s consumer %s: %w", r.name, c.cfg.Durable, err)
			}
			done <- err
		}()
	}

	var fatal error
	live := len(r.consumers)
	select {
	case <-ctx.Done():
	case fatal = <-done:
		live--
		r.log.Error("consumer failed; stopping", "err", fatal)
	}

	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.budget)
	defer cancel()
	var closing sync.WaitGroup
	for _, in := range r.intakes {
		closing.Go(func() { in.Close(stop) })
	}
	closing.Wait()
	stopLoops()
	if !r.wait(stop, looped, "background loops") {
		return fatal
	}
	for _, fn := range r.afterDrain {
		fn(stop)
	}
	stopConsumers()
	for ; live > 0; live-- {
		select {
		case err := <-done:
			if err != nil && fatal == nil && consCtx.Err() == nil {
				fatal = err
			}
		case <-stop.Done():
			r.log.Warn("consumers did not stop in time; their unacknowledged messages are redelivered")
			return fatal
		}
	}
	for _, fn := range r.finally {
		fn()
	}
	stopSupport()
	r.wait(stop, supported, "support loops")
	return fatal
}

// wait waits for the loops until stop ends, naming those still running
// when it does.
func (r *Runner) wait(stop context.Context, l *running, what string) bool {
	select {
	case <-l.done:
		return true
	case <-stop.Done():
		r.log.Warn(what+" did not stop in time", "running", l.names())
		return false
	}
}

// running is a set of started loops; done closes when all returned.
type running struct {
	mu   sync.Mutex
	left map[string]int
	done chan struct{}
}

// start runs each loop in its goroutine.
func start(ctx context.Context, loops []loop) *running {
	l := &running{left: map[string]int{}, done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, lp := range loops {
		l.left[lp.name]++
		wg.Go(func() {
			lp.fn(ctx)
			l.mu.Lock()
			l.left[lp.name]--
			l.mu.Unlock()
		})
	}
	go func() { wg.Wait(); close(l.done) }()
	return l
}

func (l *running) names() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for name, n := range l.left {
		if n > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
