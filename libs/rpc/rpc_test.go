package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/testkit"
)

// Servers are closed in each test's cleanup: no worker may outlive it
// (Close must not leak workers on timeout).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type echoReq struct {
	N int `json:"n"`
}

type echoResp struct {
	N   int    `json:"n"`
	Who string `json:"who"`
}

func newServer(t *testing.T, nc *nats.Conn, group string) *rpc.Server {
	t.Helper()
	m := rpc.NewMetrics(prometheus.NewRegistry(), "test")
	s := rpc.NewServer(nc, group, 8, m, testkit.Logger(t))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s
}

func subject(b testkit.Backend, s string) string { return b.Names.Namespace() + ".rpc.test." + s }

func ctx5s(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRoundTrip(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		nc := b.Broker(t).Conn
		s := newServer(t, nc, "g")
		subj := subject(b, "echo")
		if err := rpc.Handle(s, subj, "echo", func(_ context.Context, r echoReq) (echoResp, error) {
			return echoResp{N: r.N * 2, Who: "srv"}, nil
		}); err != nil {
			t.Fatal(err)
		}
		got, err := rpc.Call[echoReq, echoResp](ctx5s(t), nc, subj, echoReq{N: 21})
		if err != nil {
			t.Fatalf("Call: %v", err)
		}
		if got != (echoResp{N: 42, Who: "srv"}) {
			t.Errorf("reply = %+v", got)
		}
	})
}

func TestErrors(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		nc := b.Broker(t).Conn
		s := newServer(t, nc, "g")
		appErr := apperr.New(429, "rate_limited", "Too many requests").
			With("retryAfter", 7).WithHeader("Retry-After", "7")
		handlers := map[string]func(context.Context, echoReq) (echoResp, error){
			"app":   func(context.Context, echoReq) (echoResp, error) { return echoResp{}, appErr },
			"plain": func(context.Context, echoReq) (echoResp, error) { return echoResp{}, errors.New("secret dsn leaked") },
			"panic": func(context.Context, echoReq) (echoResp, error) { panic("secret panic leaked") },
		}
		for name, h := range handlers {
			if err := rpc.Handle(s, subject(b, name), name, h); err != nil {
				t.Fatal(err)
			}
		}

		_, err := rpc.Call[echoReq, echoResp](ctx5s(t), nc, subject(b, "app"), echoReq{})
		e, ok := apperr.As(err)
		if !ok {
			t.Fatalf("app error arrived as %T %v", err, err)
		}
		if e.Status != 429 || e.Code != "rate_limited" || e.Message != "Too many requests" ||
			e.Extra["retryAfter"] != float64(7) || e.Headers["Retry-After"] != "7" {
			t.Errorf("app error arrived as %+v", e)
		}

		for _, name := range []string{"plain", "panic"} {
			_, err := rpc.Call[echoReq, echoResp](ctx5s(t), nc, subject(b, name), echoReq{})
			e, ok := apperr.As(err)
			if !ok {
				t.Fatalf("%s: error arrived as %T %v", name, err, err)
			}
			want := apperr.ErrInternal
			if e.Status != want.Status || e.Code != want.Code || e.Message != want.Message || e.Extra != nil {
				t.Errorf("%s: error arrived as %+v, want %+v", name, e, want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("%s: handler's error text leaked: %v", name, err)
			}
		}

		// A request the handler cannot decode is a client error.
		msg, err := nc.RequestWithContext(ctx5s(t), subject(b, "app"), []byte("{not json"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(msg.Data), `"status":400`) {
			t.Errorf("malformed request answered %s", msg.Data)
		}
	})
}

func TestNoResponders(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		nc := b.Broker(t).Conn
		start := time.Now()
		_, err := rpc.Call[echoReq, echoResp](ctx5s(t), nc, subject(b, "nobody"), echoReq{})
		if !errors.Is(err, apperr.ErrUnavailable) {
			t.Fatalf("err = %v, want wrapping ErrUnavailable", err)
		}
		if !errors.Is(err, nats.ErrNoResponders) {
			t.Errorf("err = %v, want the cause kept", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("no-responders took %v", d)
		}
	})
}

func TestQueueGroupSharesLoad(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		subj := subject(b, "shared")
		var counts [2]atomic.Int64
		for i := range counts {
			s := newServer(t, b.Broker(t).Conn, "shared")
			if err := rpc.Handle(s, subj, "shared", func(_ context.Context, r echoReq) (echoResp, error) {
				counts[i].Add(1)
				return echoResp{N: r.N}, nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		nc := b.Broker(t).Conn
		var wg sync.WaitGroup
		var failed atomic.Int64
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < 200; i += 8 {
					got, err := rpc.Call[echoReq, echoResp](ctx5s(t), nc, subj, echoReq{N: i})
					if err != nil || got.N != i {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if failed.Load() != 0 {
			t.Fatalf("%d calls failed", failed.Load())
		}
		a, c := counts[0].Load(), counts[1].Load()
		if a+c != 200 || a == 0 || c == 0 {
			t.Errorf("servers handled %d and %d of 200 calls", a, c)
		}
	})
}

func TestCloseDrainsInFlight(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		nc := b.Broker(t).Conn
		s := newServer(t, nc, "g")
		subj := subject(b, "slow")
		entered, release := make(chan struct{}), make(chan struct{})
		if err := rpc.Handle(s, subj, "slow", func(ctx context.Context, r echoReq) (echoResp, error) {
			close(entered)
			<-release
			return echoResp{N: r.N}, ctx.Err()
		}); err != nil {
			t.Fatal(err)
		}
		type result struct {
			resp echoResp
			err  error
		}
		answered := make(chan result, 1)
		go func() {
			r, err := rpc.Call[echoReq, echoResp](ctx5s(t), nc, subj, echoReq{N: 9})
			answered <- result{r, err}
		}()
		<-entered
		closed := make(chan struct{})
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.Close(ctx)
			close(closed)
		}()
		select {
		case <-closed:
			t.Fatal("Close returned while a handler was running")
		case <-time.After(200 * time.Millisecond):
		}
		close(release)
		r := <-answered
		if r.err != nil || r.resp.N != 9 {
			t.Fatalf("in-flight call got %+v, %v", r.resp, r.err)
		}
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not return after the handler finished")
		}
		// After Close nobody answers.
		if _, err := rpc.Call[echoReq, echoResp](ctx5s(t), nc, subj, echoReq{}); !errors.Is(err, apperr.ErrUnavailable) {
			t.Errorf("call after Close: %v, want ErrUnavailable", err)
		}
	})
}

// shortCalls makes one broker call attempt 400 ms for the test.
func shortCalls(t *testing.T) time.Duration {
	t.Helper()
	const d = 400 * time.Millisecond
	broker.SetCallTimeout(d)
	t.Cleanup(func() { broker.SetCallTimeout(0) })
	return d
}

// A reply lost on the way (a NATS node died with it) costs an idempotent
// call one bounded attempt and a retry, not the caller's whole deadline;
// another call gets 503 after its single bounded attempt and is not sent
// twice.
func TestLostReplyIsBounded(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		bound := shortCalls(t)
		nc := b.Broker(t).Conn
		subj := subject(b, "lossy")
		var got atomic.Int64
		sub, err := nc.Subscribe(subj, func(m *nats.Msg) {
			if got.Add(1)%2 == 1 {
				return // every other request is lost
			}
			_ = m.Respond([]byte(`{"data":{"n":1,"who":"second"}}`))
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		start := time.Now()
		r, err := rpc.Call[echoReq, echoResp](ctx, nc, subj, echoReq{}, rpc.Idempotent())
		if err != nil || r.Who != "second" {
			t.Fatalf("idempotent call: %+v, %v", r, err)
		}
		if took := time.Since(start); took > 2*bound+time.Second {
			t.Errorf("idempotent call took %v with a %v attempt bound", took, bound)
		}
		if got.Load() != 2 {
			t.Errorf("idempotent call sent %d times, want 2", got.Load())
		}

		got.Store(0)
		start = time.Now()
		_, err = rpc.Call[echoReq, echoResp](ctx, nc, subj, echoReq{})
		if !errors.Is(err, apperr.ErrUnavailable) {
			t.Fatalf("lost reply: %v, want ErrUnavailable", err)
		}
		if took := time.Since(start); took > 2*bound+time.Second {
			t.Errorf("call took %v with a %v bound", took, 2*bound)
		}
		if got.Load() != 1 {
			t.Errorf("non-idempotent call sent %d times, want 1", got.Load())
		}
	})
}

// The handler's context ends before its caller stops waiting, so the caller
// always learns the outcome: a slow handler answers 503 (which the caller
// reads), and a non-idempotent call is not sent again.
func TestHandlerGivesUpBeforeCaller(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		// Longer than shortCalls: the reply's margin is a tenth of the
		// wait, and 80 ms was not always enough under -race on a busy
		// machine (the caller's own timeout came first).
		const bound = 1500 * time.Millisecond
		broker.SetCallTimeout(bound)
		t.Cleanup(func() { broker.SetCallTimeout(0) })
		nc := b.Broker(t).Conn
		s := newServer(t, nc, "g")
		subj := subject(b, "stuck")
		var calls atomic.Int64
		if err := rpc.Handle(s, subj, "stuck", func(ctx context.Context, _ echoReq) (echoResp, error) {
			calls.Add(1)
			<-ctx.Done() // a dependency that never answers
			return echoResp{}, fmt.Errorf("claim: %w", ctx.Err())
		}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := rpc.Call[echoReq, echoResp](ctx5s(t), nc, subj, echoReq{})
		took := time.Since(start)
		e, ok := apperr.As(err)
		if !ok || e.Status != 503 || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v; want the handler's 503 reply, not the caller's own timeout", err)
		}
		if e.Headers["Retry-After"] == "" {
			t.Errorf("503 without Retry-After: %+v", e)
		}
		if took >= 2*bound {
			t.Errorf("answered after %v: the handler should stop before the caller's %v", took, 2*bound)
		}
		if calls.Load() != 1 {
			t.Errorf("handler ran %d times, want 1", calls.Load())
		}
	})
}

// TestCloseTimeoutLeavesNoWorker: when the shutdown budget ends with a
// handler still running, Close cancels it and returns, and the workers exit
// as soon as that handler returns instead of waiting forever for work.
func TestCloseTimeoutLeavesNoWorker(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		nc := b.Broker(t).Conn
		s := newServer(t, nc, "g")
		subj := subject(b, "stuck")
		entered, handlerDone := make(chan struct{}), make(chan struct{})
		if err := rpc.Handle(s, subj, "stuck", func(ctx context.Context, r echoReq) (echoResp, error) {
			defer close(handlerDone)
			close(entered)
			<-ctx.Done() // only cancellation ends it
			return echoResp{}, ctx.Err()
		}); err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = rpc.Call[echoReq, echoResp](ctx5s(t), nc, subj, echoReq{N: 1}) }()
		<-entered
		expired, cancel := context.WithCancel(context.Background())
		cancel() // no budget at all
		s.Close(expired)
		<-handlerDone // Close cancelled the handler
		select {
		case <-s.Exited():
		case <-time.After(10 * time.Second):
			t.Fatal("workers still running after the cancelled handler returned")
		}
	})
}
