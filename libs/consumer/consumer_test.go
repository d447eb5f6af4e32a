package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
	"github.com/apitosms/apitosms/libs/testkit"
)

const durable = events.DurableQueueIngest

// The embedded NATS server and connections of a test end in its cleanup;
// nothing the consumer started may outlive it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is one consumer on the accepted stream of a fresh namespace.
type fixture struct {
	br  *broker.Broker
	n   events.Names
	reg *prometheus.Registry
	m   *consumer.Metrics
	cfg consumer.Config
}

func newFixture(t *testing.T, b testkit.Backend) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := consumer.NewMetrics(reg, "test")
	return &fixture{
		br: b.Broker(t), n: b.Names, reg: reg, m: m,
		cfg: consumer.Config{
			Stream:     b.Names.AcceptedStream(),
			Durable:    durable,
			DeadLetter: b.Names.DeadLetterSubject(durable),
			Batch:      20,
			Linger:     50 * time.Millisecond,
			MaxDeliver: 2,
		},
	}
}

// publish publishes count messages "m0".."m<count-1>" and returns their stream sequences.
func (f *fixture) publish(t *testing.T, count int) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	seqs := make([]uint64, count)
	for i := range count {
		ack, err := f.br.JS.Publish(ctx, f.n.AcceptedSubject(), []byte(fmt.Sprintf("m%d", i)))
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		seqs[i] = ack.Sequence
	}
	return seqs
}

// start runs the consumer until the test ends; stop cancels it and returns Run's result.
func (f *fixture) start(t *testing.T, h consumer.Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- consumer.Run(ctx, f.br.JS, f.cfg, h, f.m, testkit.Logger(t)) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(5 * time.Second):
				result = errors.New("Run did not return within 5s of cancel")
			}
		})
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func (f *fixture) info(t *testing.T) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := f.br.JS.Consumer(ctx, f.cfg.Stream, f.cfg.Durable)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	return info
}

// settled reports whether every message up to last was acked (or terminated).
func (f *fixture) settled(t *testing.T, last uint64) bool {
	t.Helper()
	info := f.info(t)
	return info.NumAckPending == 0 && info.NumPending == 0 && info.AckFloor.Stream == last
}

// counter returns the value of counter metric name (labelled durable).
func (f *fixture) counter(t *testing.T, name string) float64 {
	t.Helper()
	return testkit.Metric(t, f.reg, name, nil)
}

// deadLetters returns the messages in the dead-letter stream.
func (f *fixture) deadLetters(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	return testkit.DeadLetters(t, f.br, f.n)
}

func TestSuccessAcksEverythingOnce(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		f := newFixture(t, b)
		seqs := f.publish(t, 50)
		var mu sync.Mutex
		seen := map[string]int{}
		stop := f.start(t, func(_ context.Context, batch []jetstream.Msg) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range batch {
				seen[string(m.Data())]++
			}
			return nil
		})
		last := seqs[len(seqs)-1]
		testkit.Eventually(t, 5*time.Second, "all acked", func() bool { return f.settled(t, last) })
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for i := range 50 {
			if n := seen[fmt.Sprintf("m%d", i)]; n != 1 {
				t.Errorf("m%d handled %d times, want 1", i, n)
			}
		}
		if got := f.counter(t, "apitosms_test_consumer_messages_total"); got != 50 {
			t.Errorf("processed metric = %v, want 50", got)
		}
		if got := f.counter(t, "apitosms_test_consumer_failures_total"); got != 0 {
			t.Errorf("failures metric = %v, want 0", got)
		}
	})
}

func TestPoisonMessageIsIsolatedAndDeadLettered(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		f := newFixture(t, b)
		seqs := f.publish(t, 10)
		const poison = "m3"
		var mu sync.Mutex
		good := map[string]int{}
		var poisonDeliveries uint64
		f.start(t, func(_ context.Context, batch []jetstream.Msg) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range batch {
				if string(m.Data()) == poison {
					if meta, err := m.Metadata(); err == nil {
						poisonDeliveries = max(poisonDeliveries, meta.NumDelivered)
					}
					return errors.New("poison in batch")
				}
			}
			for _, m := range batch {
				good[string(m.Data())]++
			}
			return nil
		})
		testkit.Eventually(t, 8*time.Second, "poison dead-lettered", func() bool { return len(f.deadLetters(t)) == 1 })
		testkit.Eventually(t, 5*time.Second, "all settled", func() bool { return f.settled(t, seqs[len(seqs)-1]) })

		dl := f.deadLetters(t)[0]
		if string(dl.Data) != poison {
			t.Errorf("dead letter data = %q, want %q", dl.Data, poison)
		}
		if dl.Subject != f.cfg.DeadLetter {
			t.Errorf("dead letter subject = %q, want %q", dl.Subject, f.cfg.DeadLetter)
		}
		if h := dl.Header.Get("Apitosms-Error"); !strings.Contains(h, "poison in batch") {
			t.Errorf("Apitosms-Error header = %q", h)
		}
		if h := dl.Header.Get("Apitosms-Stream-Seq"); h != strconv.FormatUint(seqs[3], 10) {
			t.Errorf("Apitosms-Stream-Seq = %q, want %d", h, seqs[3])
		}
		// Terminated: never delivered again (nothing is pending, awaiting
		// an ack or due for redelivery).
		if info := f.info(t); info.NumAckPending != 0 || info.NumPending != 0 || info.NumRedelivered != 0 {
			t.Errorf("after settling: ack pending %d, pending %d, redelivered %d", info.NumAckPending, info.NumPending, info.NumRedelivered)
		}
		mu.Lock()
		defer mu.Unlock()
		if poisonDeliveries != f.cfg.MaxDeliver {
			t.Errorf("poison delivered %d times, want %d", poisonDeliveries, f.cfg.MaxDeliver)
		}
		for i := range 10 {
			name := fmt.Sprintf("m%d", i)
			want := 1
			if name == poison {
				want = 0
			}
			if good[name] != want {
				t.Errorf("%s handled successfully %d times, want %d", name, good[name], want)
			}
		}
		if got := f.counter(t, "apitosms_test_consumer_dead_letters_total"); got != 1 {
			t.Errorf("dead letters metric = %v, want 1", got)
		}
		if got := f.counter(t, "apitosms_test_consumer_messages_total"); got != 9 {
			t.Errorf("processed metric = %v, want 9", got)
		}
	})
}

func TestPanickingHandlerIsAFailure(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		f := newFixture(t, b)
		seqs := f.publish(t, 2) // m0 panics, m1 succeeds
		var mu sync.Mutex
		var handled []string
		f.start(t, func(_ context.Context, batch []jetstream.Msg) error {
			for _, m := range batch {
				if string(m.Data()) == "m0" {
					panic("boom")
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, m := range batch {
				handled = append(handled, string(m.Data()))
			}
			return nil
		})
		testkit.Eventually(t, 8*time.Second, "panicking message dead-lettered", func() bool { return len(f.deadLetters(t)) == 1 })
		testkit.Eventually(t, 5*time.Second, "all settled", func() bool { return f.settled(t, seqs[1]) })
		dl := f.deadLetters(t)[0]
		if string(dl.Data) != "m0" || !strings.Contains(dl.Header.Get("Apitosms-Error"), "handler panic: boom") {
			t.Errorf("dead letter = %q with error %q", dl.Data, dl.Header.Get("Apitosms-Error"))
		}
		mu.Lock()
		defer mu.Unlock()
		if len(handled) != 1 || handled[0] != "m1" {
			t.Errorf("handled %v, want [m1]", handled)
		}
	})
}

func TestCancelReturnsNilPromptly(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		f := newFixture(t, b)
		stop := f.start(t, func(context.Context, []jetstream.Msg) error { return nil })
		testkit.Eventually(t, 5*time.Second, "Run waiting for messages", func() bool { return f.info(t).NumWaiting > 0 })
		start := time.Now()
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Run took %v to return after cancel", d)
		}
	})
}

func TestCancelFinishesBatchInHand(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		f := newFixture(t, b)
		seqs := f.publish(t, 1)
		entered, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		stop := f.start(t, func(ctx context.Context, _ []jetstream.Msg) error {
			once.Do(func() { close(entered) })
			<-release
			return ctx.Err() // the handler's context outlives Run's
		})
		select {
		case <-entered:
		case <-time.After(5 * time.Second):
			t.Fatal("handler never called")
		}
		stopped := make(chan error, 1)
		go func() { stopped <- stop() }()
		select {
		case err := <-stopped:
			t.Fatalf("Run returned (%v) while the handler was still running", err)
		case <-time.After(200 * time.Millisecond):
		}
		close(release)
		if err := <-stopped; err != nil {
			t.Fatalf("Run: %v", err)
		}
		testkit.Eventually(t, 5*time.Second, "batch acked", func() bool { return f.settled(t, seqs[0]) })
	})
}

func TestPendingGaugeFollowsLag(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		f := newFixture(t, b)
		const name = "apitosms_test_consumer_pending_messages"
		if got := f.counter(t, name); got != 0 {
			t.Fatalf("pending before Run = %v, want no series", got)
		}
		seqs := f.publish(t, 30)
		release := make(chan struct{})
		f.start(t, func(ctx context.Context, _ []jetstream.Msg) error {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		// Nothing is acked while the handler holds its batch: all 30 are lag.
		testkit.Eventually(t, 5*time.Second, "pending = 30", func() bool { return f.counter(t, name) == 30 })
		close(release)
		testkit.Eventually(t, 5*time.Second, "all acked", func() bool { return f.settled(t, seqs[len(seqs)-1]) })
		if got := f.counter(t, name); got != 0 {
			t.Errorf("pending after the handler caught up = %v, want 0", got)
		}
	})
}

// WaitFor returns as soon as the messages up to a sequence are processed,
// while Wait, which needs all of them, times out behind a slow one.
func TestCatchUpWaitFor(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		f := newFixture(t, b)
		f.cfg.Batch = 1
		seqs := f.publish(t, 10)
		release := make(chan struct{})
		f.start(t, func(ctx context.Context, batch []jetstream.Msg) error {
			if string(batch[0].Data()) == "m5" {
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
		ctx := context.Background()
		cu, err := consumer.NewCatchUp(ctx, f.br.JS, f.cfg.Stream, f.cfg.Durable, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cu.WaitFor(ctx, seqs[4]); err != nil {
			t.Fatalf("WaitFor(m4's sequence) behind a stuck m5: %v", err)
		}
		if cu.Floor() < seqs[4] {
			t.Fatalf("floor %d after WaitFor(%d)", cu.Floor(), seqs[4])
		}
		if _, err := cu.Wait(ctx); !errors.Is(err, apperr.ErrUnavailable) {
			t.Fatalf("Wait behind a stuck message: %v, want unavailable", err)
		}
		if _, err := cu.WaitFor(ctx, seqs[5]); !errors.Is(err, apperr.ErrUnavailable) {
			t.Fatalf("WaitFor(the stuck message): %v, want unavailable", err)
		}
		close(release)
		cu2, err := consumer.NewCatchUp(ctx, f.br.JS, f.cfg.Stream, f.cfg.Durable, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cu2.Wait(ctx); err != nil || cu2.Floor() < seqs[9] {
			t.Fatalf("Wait after release: %v, floor %d, want %d", err, cu2.Floor(), seqs[9])
		}
		// Beyond the stream's last sequence waits only for the last one.
		if _, err := cu2.WaitFor(ctx, seqs[9]+1000); err != nil {
			t.Fatalf("WaitFor beyond the end: %v", err)
		}
	})
}

// TestCatchUpManyWaitersShareThePoll: a hundred readers waiting at once on
// one CatchUp (they share each consumer lookup) all return once the
// consumer catches up, and none returns before.
func TestCatchUpManyWaitersShareThePoll(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		f := newFixture(t, b)
		f.cfg.Batch = 1
		seqs := f.publish(t, 3)
		release := make(chan struct{})
		f.start(t, func(ctx context.Context, batch []jetstream.Msg) error {
			if string(batch[0].Data()) == "m2" {
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
		ctx := context.Background()
		cu, err := consumer.NewCatchUp(ctx, f.br.JS, f.cfg.Stream, f.cfg.Durable, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		const waiters = 100
		errs := make(chan error, waiters)
		for range waiters {
			go func() {
				_, err := cu.WaitFor(ctx, seqs[2])
				errs <- err
			}()
		}
		if _, err := cu.WaitFor(ctx, seqs[1]); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errs:
			t.Fatalf("a waiter returned (%v) while m2 was stuck", err)
		default:
		}
		close(release)
		for range waiters {
			if err := <-errs; err != nil {
				t.Fatalf("waiter: %v", err)
			}
		}
		if cu.Floor() < seqs[2] {
			t.Fatalf("floor %d, want %d", cu.Floor(), seqs[2])
		}
	})
}

// With a Window, messages that arrive one by one after a batch's first
// message (each after the previous was delivered, as one-message requests
// do) share one handler call, up to Batch; the next one starts a new batch.
func TestWindowGathersATrickle(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		f := newFixture(t, b)
		f.cfg.Batch = 4
		f.cfg.Linger = time.Millisecond // unused with a Window
		f.cfg.Window = 3 * time.Second  // long, so a stalled box does not end it early
		var mu sync.Mutex
		var calls [][]string
		stop := f.start(t, func(_ context.Context, batch []jetstream.Msg) error {
			mu.Lock()
			defer mu.Unlock()
			var call []string
			for _, m := range batch {
				call = append(call, string(m.Data()))
			}
			calls = append(calls, call)
			return nil
		})
		// m0..m4 one at a time, each once the previous one is delivered
		// (pending on the consumer, no call made yet).
		var last uint64
		for i := range 5 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ack, err := f.br.JS.Publish(ctx, f.n.AcceptedSubject(), []byte(fmt.Sprintf("m%d", i)))
			cancel()
			if err != nil {
				t.Fatalf("publish: %v", err)
			}
			last = ack.Sequence
			if i < 4 {
				testkit.Eventually(t, 5*time.Second, "delivered", func() bool {
					return f.info(t).Delivered.Stream == last
				})
			}
		}
		testkit.Eventually(t, 10*time.Second, "all acked", func() bool { return f.settled(t, last) })
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		want := [][]string{{"m0", "m1", "m2", "m3"}, {"m4"}}
		if fmt.Sprint(calls) != fmt.Sprint(want) {
			t.Fatalf("handler calls %v, want %v (a window's trickle in one call, bounded by Batch)", calls, want)
		}
	})
}

// A reader waiting on a CatchUp that shares the consumer's Hurry ends the
// batch's Window: with a window far longer than the reader's timeout, the
// reader still gets its message stored, and the batch held only it. Without
// the Hurry the same wait gives up unavailable (the window holds the batch).
func TestHurryEndsTheWindow(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		f := newFixture(t, b)
		f.cfg.Window = time.Hour
		hurry := new(consumer.Hurry)
		f.cfg.Hurry = hurry
		calls := make(chan int, 10)
		f.start(t, func(_ context.Context, batch []jetstream.Msg) error {
			calls <- len(batch)
			return nil
		})
		ctx := context.Background()
		slow, err := consumer.NewCatchUp(ctx, f.br.JS, f.cfg.Stream, f.cfg.Durable, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		seqs := f.publish(t, 1)
		testkit.Eventually(t, 5*time.Second, "delivered", func() bool {
			return f.info(t).Delivered.Stream == seqs[0]
		})
		if _, err := slow.Wait(ctx); !errors.Is(err, apperr.ErrUnavailable) {
			t.Fatalf("Wait without the Hurry inside an hour's window: %v, want unavailable", err)
		}
		cu, err := consumer.NewCatchUp(ctx, f.br.JS, f.cfg.Stream, f.cfg.Durable, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cu.HurryWith(hurry).Wait(ctx); err != nil {
			t.Fatalf("Wait with the Hurry: %v", err)
		}
		if n := <-calls; n != 1 {
			t.Fatalf("the hurried batch held %d messages, want 1", n)
		}
	})
}
