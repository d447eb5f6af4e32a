package apply

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
)

// Poll interval of the catch-up wait: it starts small, for the usual case of
// a consumer a few milliseconds behind, and grows to pollMax.
const (
	pollMin = time.Millisecond
	pollMax = 10 * time.Millisecond
)

// waiter waits until the status-ingest consumer has acknowledged every
// message the accepted stream held when the wait began, that is until every
// message accepted so far is in the deliveries table.
type waiter struct {
	js      jetstream.JetStream
	names   events.Names
	timeout time.Duration
	seconds prometheus.Observer

	mu     sync.Mutex
	stream jetstream.Stream
	cons   jetstream.Consumer
}

// wait returns nil once the ingest consumer caught up, or an error wrapping
// apperr.ErrUnavailable after the timeout.
func (w *waiter) wait(ctx context.Context) error {
	start := time.Now()
	defer func() { w.seconds.Observe(time.Since(start).Seconds()) }()
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	stream, cons, err := w.handles(ctx)
	if err != nil {
		return fmt.Errorf("%w: status ingest consumer: %w", apperr.ErrUnavailable, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("%w: accepted stream info: %w", apperr.ErrUnavailable, err)
	}
	last := info.State.LastSeq
	delay := pollMin
	for {
		ci, err := cons.Info(ctx)
		if err == nil && ci.AckFloor.Stream >= last {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: status ingest consumer behind the accepted stream (sequence %d)", apperr.ErrUnavailable, last)
		case <-time.After(delay):
		}
		delay = min(2*delay, pollMax)
	}
}

// handles returns the accepted stream and the ingest consumer, looked up once.
func (w *waiter) handles(ctx context.Context) (jetstream.Stream, jetstream.Consumer, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cons != nil {
		return w.stream, w.cons, nil
	}
	stream, err := w.js.Stream(ctx, w.names.AcceptedStream())
	if err != nil {
		return nil, nil, err
	}
	cons, err := stream.Consumer(ctx, events.DurableStatusIngest)
	if err != nil {
		return nil, nil, err
	}
	w.stream, w.cons = stream, cons
	return stream, cons, nil
}
