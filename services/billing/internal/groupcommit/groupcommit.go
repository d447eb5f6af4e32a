// Package groupcommit batches reservations arriving together into one
// database transaction: one goroutine takes the first waiting request, every
// other request already waiting (up to a maximum), applies them all at once
// and hands each caller its own result.
package groupcommit

import (
	"context"
	"time"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/services/billing/internal/domain"
)

// ApplyFunc applies a batch in order and returns one grant per reservation;
// an error fails the whole batch.
type ApplyFunc func(ctx context.Context, batch []domain.Reservation) ([]domain.Grant, error)

// Committer collects reservations and applies them in batches. Requests are
// applied in the order they reached the committer.
type Committer struct {
	apply   ApplyFunc
	max     int
	timeout time.Duration
	observe func(size int)
	in      chan *pending
	stopped chan struct{}
}

type pending struct {
	r    domain.Reservation
	done chan result // buffered: the committer never waits on a caller
}

type result struct {
	g   domain.Grant
	err error
}

// New returns a committer applying up to max reservations per batch, each
// batch bounded by timeout; observe (may be nil) learns each batch's size.
func New(apply ApplyFunc, max int, timeout time.Duration, observe func(size int)) *Committer {
	if max < 1 {
		max = 1
	}
	if observe == nil {
		observe = func(int) {}
	}
	return &Committer{
		apply: apply, max: max, timeout: timeout, observe: observe,
		in: make(chan *pending), stopped: make(chan struct{}),
	}
}

// Reserve queues r and waits for its grant. It fails with ctx's error if ctx
// ends first (the reservation may still have been applied), and with
// apperr.ErrUnavailable once the committer has stopped.
func (c *Committer) Reserve(ctx context.Context, r domain.Reservation) (domain.Grant, error) {
	p := &pending{r: r, done: make(chan result, 1)}
	select {
	case c.in <- p:
	case <-c.stopped:
		return domain.Grant{}, apperr.ErrUnavailable
	case <-ctx.Done():
		return domain.Grant{}, ctx.Err()
	}
	select {
	case res := <-p.done:
		return res.g, res.err
	case <-ctx.Done():
		return domain.Grant{}, ctx.Err()
	}
}

// Run applies batches until ctx is done; the batch in progress then
// completes. Requests are handed over through an unbuffered channel, so a
// batch is the first caller plus every caller blocked waiting behind it
// (Go serves blocked senders first in, first out).
func (c *Committer) Run(ctx context.Context) {
	defer close(c.stopped)
	batch := make([]*pending, 0, c.max)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case p := <-c.in:
			batch = append(batch, p)
		}
	collect:
		for len(batch) < c.max {
			select {
			case p := <-c.in:
				batch = append(batch, p)
			default:
				break collect
			}
		}
		c.commit(context.WithoutCancel(ctx), batch)
	}
}

func (c *Committer) commit(ctx context.Context, batch []*pending) {
	c.observe(len(batch))
	rs := make([]domain.Reservation, len(batch))
	for i, p := range batch {
		rs[i] = p.r
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	grants, err := c.apply(ctx, rs)
	for i, p := range batch {
		if err != nil {
			p.done <- result{err: err}
			continue
		}
		p.done <- result{g: grants[i], err: grants[i].Err}
	}
}
