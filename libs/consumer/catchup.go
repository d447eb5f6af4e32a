package consumer

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/broker"
)

// Polling back-off while a consumer catches up: small first, for the usual
// case of a consumer a few milliseconds behind.
const (
	firstPoll = time.Millisecond
	maxPoll   = 10 * time.Millisecond
)

// CatchUp gives a reader read-your-writes over a stream: Wait returns once a
// durable consumer has acknowledged every message the stream held when Wait
// began. Consumers ack only after their effect is committed, so from then on
// the reader's database holds everything published before, whichever replica
// stored it. It is safe for concurrent use.
type CatchUp struct {
	stream  jetstream.Stream
	cons    jetstream.Consumer
	timeout time.Duration
	floor   atomic.Uint64 // highest ack floor seen: later waits skip the consumer lookup when it covers them
	hurry   *Hurry        // asked on every lookup that finds the consumer short (nil: none)

	mu     sync.Mutex
	polled chan struct{} // closed when the consumer lookup in flight ends; nil when none is
}

// NewCatchUp watches durable on stream (both must exist), giving up after timeout.
func NewCatchUp(ctx context.Context, js jetstream.JetStream, stream, durable string, timeout time.Duration) (*CatchUp, error) {
	var s jetstream.Stream
	var cons jetstream.Consumer
	if err := broker.Ensure(ctx, "stream "+stream+", consumer "+durable, func(ctx context.Context) (err error) {
		if s, err = js.Stream(ctx, stream); err != nil {
			return err
		}
		cons, err = s.Consumer(ctx, durable)
		return err
	}); err != nil {
		return nil, err
	}
	c := &CatchUp{stream: s, cons: cons, timeout: timeout}
	c.raise(cons.CachedInfo().AckFloor.Stream)
	return c, nil
}

// HurryWith makes every consumer lookup that finds the consumer short ask h,
// so a batch of that consumer gathering in this process (Config.Hurry)
// commits now instead of at the end of its Window. It returns c.
func (c *CatchUp) HurryWith(h *Hurry) *CatchUp {
	c.hurry = h
	return c
}

// Wait returns once every message published before the call is processed,
// and how long that took. If the consumer does not catch up within the
// timeout (or ctx ends first) it returns an error wrapping
// apperr.ErrUnavailable: answering from an incomplete database is not allowed.
func (c *CatchUp) Wait(ctx context.Context) (time.Duration, error) {
	return c.WaitFor(ctx, math.MaxUint64)
}

// WaitFor is Wait for a reader that needs only the messages up to stream
// sequence seq: it returns once those are processed, without waiting for
// later ones (under continuous publishing that can be much sooner). A
// sequence beyond the stream's last one waits for the last one.
func (c *CatchUp) WaitFor(ctx context.Context, seq uint64) (time.Duration, error) {
	start := time.Now()
	if c.floor.Load() >= seq {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	info, err := c.stream.Info(ctx)
	if err != nil {
		return time.Since(start), fmt.Errorf("stream info: %w: %w", apperr.ErrUnavailable, err)
	}
	target := min(seq, info.State.LastSeq)
	poll := firstPoll
	for c.floor.Load() < target {
		err := c.refresh(ctx)
		if err == nil && c.floor.Load() >= target {
			break
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				err = ctx.Err()
			}
			return time.Since(start), fmt.Errorf("consumer behind its stream (sequence %d): %w: %w", target, apperr.ErrUnavailable, err)
		case <-t.C:
		}
		poll = min(2*poll, maxPoll)
	}
	return time.Since(start), nil
}

// refresh raises the floor from one consumer lookup, shared by every waiter
// that asks while it is in flight: a thousand requests waiting at once cost
// the broker one request per poll interval, not a thousand. A waiter that
// joined a lookup started before its own target was known simply polls
// again if the floor is still short.
func (c *CatchUp) refresh(ctx context.Context) error {
	c.mu.Lock()
	if ch := c.polled; ch != nil {
		c.mu.Unlock()
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ch := make(chan struct{})
	c.polled = ch
	c.mu.Unlock()
	ci, err := c.cons.Info(ctx)
	if err == nil {
		c.raise(ci.AckFloor.Stream)
		if ci.NumAckPending > 0 || ci.NumPending > 0 {
			c.hurry.Ask()
		}
	}
	c.mu.Lock()
	c.polled = nil
	c.mu.Unlock()
	close(ch)
	return err
}

// Floor is the highest ack floor seen so far: every message up to this
// stream sequence is processed. It may lag the consumer (it is refreshed by
// Wait), never lead it.
func (c *CatchUp) Floor() uint64 { return c.floor.Load() }

// raise records an ack floor, keeping the highest seen.
func (c *CatchUp) raise(seq uint64) {
	for {
		cur := c.floor.Load()
		if seq <= cur || c.floor.CompareAndSwap(cur, seq) {
			return
		}
	}
}
