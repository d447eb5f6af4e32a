// Package groupcommit makes concurrent callers share one database
// transaction (one commit, one fsync): SQLite's single connection otherwise
// gives every commit a turn of its own. One goroutine takes the first waiting
// job plus every job already queued behind it (up to a maximum) and hands
// them, in arrival order, to the service's commit function, which records
// each job's outcome in the job itself. NewParallel runs several such
// goroutines, for a database that takes concurrent transactions.
package groupcommit

import (
	"context"
	"fmt"
	"sync"

	"github.com/apitosms/apitosms/libs/apperr"
)

// Batcher groups jobs of type J (usually a pointer to a struct holding a
// request and, after commit, its result).
type Batcher[J any] struct {
	commit  func(ctx context.Context, batch []J)
	max     int
	observe func(size int)
	in      chan entry[J]
	stop    chan struct{}
	done    chan struct{}
}

type entry[J any] struct {
	job  J
	ctx  context.Context
	done chan struct{}
}

// New starts a batcher. commit receives batches of up to size jobs, with a
// context that no single caller can cancel; it must set every job's outcome.
// observe, if not nil, learns each batch's size.
func New[J any](size int, commit func(ctx context.Context, batch []J), observe func(size int)) *Batcher[J] {
	return NewParallel(1, size, commit, observe)
}

// NewParallel is New with workers batches committed at once (each from its
// own goroutine, in its own transaction): batches are then not ordered
// relative to one another, only jobs within one.
func NewParallel[J any](workers, size int, commit func(ctx context.Context, batch []J), observe func(size int)) *Batcher[J] {
	b := &Batcher[J]{commit: commit, max: max(size, 1), observe: observe,
		in: make(chan entry[J]), stop: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(b.run)
	}
	go func() { wg.Wait(); close(b.done) }()
	return b
}

// Do hands job over and returns once its batch is committed (or failed): the
// outcome is then in job. It returns ctx's error if ctx ends before the job
// was handed over, and an error wrapping apperr.ErrUnavailable after Close.
// Once handed over, a job runs to the end even if ctx ends.
func (b *Batcher[J]) Do(ctx context.Context, job J) error {
	e := entry[J]{job: job, ctx: ctx, done: make(chan struct{})}
	select {
	case b.in <- e:
	case <-b.stop:
		return fmt.Errorf("%w: shutting down", apperr.ErrUnavailable)
	case <-ctx.Done():
		return ctx.Err()
	}
	<-e.done
	return nil
}

// Close stops taking jobs after the batch in hand is committed.
func (b *Batcher[J]) Close() {
	close(b.stop)
	<-b.done
}

func (b *Batcher[J]) run() {
	batch := make([]entry[J], 0, b.max)
	jobs := make([]J, 0, b.max)
	for {
		batch = batch[:0]
		select {
		case e := <-b.in:
			batch = append(batch, e)
		case <-b.stop:
			return
		}
		// The channel is unbuffered: callers blocked sending are served
		// first in, first out, so the batch keeps arrival order.
	collect:
		for len(batch) < b.max {
			select {
			case e := <-b.in:
				batch = append(batch, e)
			default:
				break collect
			}
		}
		jobs = jobs[:0]
		for _, e := range batch {
			jobs = append(jobs, e.job)
		}
		if b.observe != nil {
			b.observe(len(jobs))
		}
		b.commit(context.WithoutCancel(batch[0].ctx), jobs)
		for _, e := range batch {
			close(e.done)
		}
	}
}
