package lifecycle_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/consumer"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/lifecycle"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/testkit"
)

func TestMain(m *testing.M) {
	// The embedded NATS server and the nats.go connections of a test are
	// closed in its cleanup; nothing may outlive it.
	goleak.VerifyTestMain(m)
}

type req struct{}
type resp struct {
	OK bool `json:"ok"`
}

// fixture is a service of one rpc server and one consumer on the accepted
// stream of a fresh namespace.
type fixture struct {
	br   *broker.Broker
	n    events.Names
	srv  *rpc.Server
	cm   *consumer.Metrics
	cfg  consumer.Config
	subj string
}

func newFixture(t *testing.T, b testkit.Backend) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	rm := rpc.NewMetrics(reg, "test")
	cm := consumer.NewMetrics(reg, "test")
	br := b.Broker(t)
	return &fixture{
		br: br, n: b.Names, cm: cm,
		srv:  rpc.NewServer(br.Conn, "test", 4, rm, testkit.Logger(t)),
		subj: b.Names.Namespace() + ".rpc.test.wait",
		cfg: consumer.Config{
			Stream:     b.Names.AcceptedStream(),
			Durable:    events.DurableQueueIngest,
			DeadLetter: b.Names.DeadLetterSubject(events.DurableQueueIngest),
			Batch:      4,
			MaxDeliver: 2,
		},
	}
}

// trail records what happened, in order.
type trail struct {
	mu     sync.Mutex
	events []string
}

func (l *trail) add(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *trail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.events, ", ")
}

// A request in flight that waits for the consumer to store a message
// published after shutdown began is answered: the consumer stops only once
// the handler has returned.
func TestHandlerWaitingOnConsumerFinishesFirst(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		f := newFixture(t, b)
		var order trail
		entered, late, closing := make(chan struct{}), make(chan struct{}), make(chan struct{})
		var lateOnce, closingOnce sync.Once
		if err := rpc.Handle(f.srv, f.subj, "wait", func(ctx context.Context, _ req) (resp, error) {
			close(entered)
			select {
			case <-late:
				order.add("handler answered")
				return resp{OK: true}, nil
			case <-ctx.Done():
				return resp{}, apperr.ErrUnavailable
			}
		}); err != nil {
			t.Fatal(err)
		}
		r := lifecycle.New("test", 10*time.Second, testkit.Logger(t)).
			Intake(f.srv, lifecycle.IntakeFunc(func(context.Context) {
				closingOnce.Do(func() { close(closing) })
			})).
			Consume(f.br.JS, f.cfg, func(_ context.Context, batch []jetstream.Msg) error {
				for _, m := range batch {
					if string(m.Data()) == "late" {
						lateOnce.Do(func() { order.add("consumer stored late"); close(late) })
					}
				}
				return nil
			}, f.cm).
			AfterDrain(func(context.Context) { order.add("after drain") }).
			Finally(func() { order.add("consumers stopped") })

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ran := make(chan error, 1)
		go func() { ran <- r.Run(ctx) }()
		called := make(chan error, 1)
		go func() {
			cctx, ccancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer ccancel()
			got, err := rpc.Call[req, resp](cctx, f.br.Conn, f.subj, req{})
			if err == nil && !got.OK {
				err = errors.New("reply without ok")
			}
			called <- err
		}()
		<-entered
		cancel()
		<-closing // shutdown has begun
		pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer pcancel()
		if _, err := f.br.JS.Publish(pctx, f.n.AcceptedSubject(), []byte("late")); err != nil {
			t.Fatalf("publish: %v", err)
		}
		if err := <-called; err != nil {
			t.Errorf("request in flight at shutdown: %v, want its answer", err)
		}
		if err := <-ran; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		want := "consumer stored late, handler answered, after drain, consumers stopped"
		if got := order.String(); got != want {
			t.Errorf("order = %q\nwant      %q", got, want)
		}
	})
}

// A handler that never returns holds shutdown only for the budget; the
// consumers are still stopped and Run returns nil.
func TestBudgetBoundsShutdown(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		f := newFixture(t, b)
		entered, release := make(chan struct{}), make(chan struct{})
		if err := rpc.Handle(f.srv, f.subj, "stuck", func(context.Context, req) (resp, error) {
			close(entered)
			<-release // ignores its context: the worst case
			return resp{OK: true}, nil
		}); err != nil {
			t.Fatal(err)
		}
		const budget = 300 * time.Millisecond
		r := lifecycle.New("test", budget, testkit.Logger(t)).
			Intake(f.srv).
			Consume(f.br.JS, f.cfg, func(context.Context, []jetstream.Msg) error { return nil }, f.cm)
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		go func() { ran <- r.Run(ctx) }()
		called := make(chan struct{})
		go func() {
			defer close(called)
			cctx, ccancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer ccancel()
			_, _ = rpc.Call[req, resp](cctx, f.br.Conn, f.subj, req{})
		}()
		t.Cleanup(func() { close(release); <-called; <-f.srv.Exited() })
		<-entered
		start := time.Now()
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		took := time.Since(start)
		if took < budget || took > budget+5*time.Second {
			t.Errorf("shutdown took %v with a stuck handler, want about the budget %v", took, budget)
		}
	})
}

// A consumer that cannot run is fatal: Run stops the rest and returns its
// error, naming the durable.
func TestFatalConsumerStopsTheService(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		f := newFixture(t, b)
		f.cfg.Durable = "no-such-durable"
		loopEnded := make(chan struct{})
		r := lifecycle.New("test", 5*time.Second, testkit.Logger(t)).
			Intake(f.srv).
			Go("loop", func(ctx context.Context) { <-ctx.Done(); close(loopEnded) }).
			Consume(f.br.JS, f.cfg, func(context.Context, []jetstream.Msg) error { return nil }, f.cm)
		err := r.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), "no-such-durable") {
			t.Fatalf("Run = %v, want the consumer's error", err)
		}
		select {
		case <-loopEnded:
		default:
			t.Error("Run returned before its loop ended")
		}
		<-f.srv.Exited()
	})
}
