// Package catchup gives the queue read-your-writes: a reader waits until the
// durable queue-ingest consumer has stored everything the accepted stream
// held when the reader began, whichever replica ingested it.
package catchup

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
)

// Polling back-off while the consumer catches up.
const (
	firstPoll = time.Millisecond
	maxPoll   = 10 * time.Millisecond
)

// Waiter waits for the ingest consumer's ack floor to reach the stream's last
// sequence. A message is acked only after its rows are committed, so once the
// floor covers a sequence, every message up to it is in the database. It is
// safe for concurrent use.
type Waiter struct {
	stream  jetstream.Stream
	cons    jetstream.Consumer
	timeout time.Duration
	floor   atomic.Uint64 // highest ack floor seen
}

// New returns a waiter on the accepted stream and its queue-ingest durable,
// which must exist (events.EnsureStreams).
func New(ctx context.Context, js jetstream.JetStream, n events.Names, timeout time.Duration) (*Waiter, error) {
	stream, err := js.Stream(ctx, n.AcceptedStream())
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", n.AcceptedStream(), err)
	}
	cons, err := stream.Consumer(ctx, events.DurableQueueIngest)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", events.DurableQueueIngest, err)
	}
	w := &Waiter{stream: stream, cons: cons, timeout: timeout}
	w.raise(cons.CachedInfo().AckFloor.Stream)
	return w, nil
}

// Wait returns once every message accepted before the call is stored, and
// reports how long that took. If ingestion does not catch up within the
// timeout (or ctx ends first) it returns apperr.ErrUnavailable.
func (w *Waiter) Wait(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	info, err := w.stream.Info(ctx)
	if err != nil {
		return time.Since(start), fmt.Errorf("accepted stream info: %w: %w", apperr.ErrUnavailable, err)
	}
	target := info.State.LastSeq
	poll := firstPoll
	for w.floor.Load() < target {
		ci, err := w.cons.Info(ctx)
		if err == nil {
			w.raise(ci.AckFloor.Stream)
			if w.floor.Load() >= target {
				break
			}
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				err = ctx.Err()
			}
			return time.Since(start), fmt.Errorf("ingestion behind the accepted stream: %w: %w", apperr.ErrUnavailable, err)
		case <-t.C:
		}
		poll = min(2*poll, maxPoll)
	}
	return time.Since(start), nil
}

// raise records an ack floor, keeping the highest seen.
func (w *Waiter) raise(seq uint64) {
	for {
		cur := w.floor.Load()
		if seq <= cur || w.floor.CompareAndSwap(cur, seq) {
			return
		}
	}
}
