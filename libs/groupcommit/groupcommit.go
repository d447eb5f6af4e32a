// Package groupcommit makes concurrent callers share one database
// transaction (one commit, one fsync): SQLite's single connection otherwise
// gives every commit a turn of its own. One goroutine takes the first waiting
// job plus every job already queued behind it (up to a maximum) and hands
// them, in arrival order, to the service's commit function, which records
// each job's outcome in the job itself. NewParallel runs several such
// goroutines, for a database that takes concurrent transactions.
//
// Jobs that nobody waits on as urgently (DoLater: a consumer's batch, whose
// delay only delays events) go in a second lane: each batch takes at most
// one of them, after the jobs of Do, so a large piece of background work
// cut into jobs never stands in front of the waiting callers as a whole, and
// still advances by one job every batch however busy the first lane is.
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

	mu    sync.Mutex
	later []entry[J]    // DoLater's jobs not taken yet, oldest first
	kick  chan struct{} // a later job is waiting (buffered 1)
	shut  bool          // Close began: DoLater takes nothing more
}

type entry[J any] struct {
	job  J
	ctx  context.Context
	done chan struct{}
	err  *error // a later job's: set if Close dropped it
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
		in: make(chan entry[J]), stop: make(chan struct{}), done: make(chan struct{}), kick: make(chan struct{}, 1)}
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

// DoLater hands jobs over to the second lane and returns once every one of
// them is committed (or failed): the outcomes are then in the jobs. A batch
// takes at most one later job, after the jobs waiting in Do, so these jobs
// run one batch after another, in order, each beside the callers of Do of
// its moment. A later job is taken even when ctx has ended (the commit
// function sees its ctx and may skip it). It returns an error wrapping
// apperr.ErrUnavailable if Close came before all of them were taken.
func (b *Batcher[J]) DoLater(ctx context.Context, jobs ...J) error {
	if len(jobs) == 0 {
		return nil
	}
	var dropped error
	es := make([]entry[J], len(jobs))
	b.mu.Lock()
	if b.shut {
		b.mu.Unlock()
		return fmt.Errorf("%w: shutting down", apperr.ErrUnavailable)
	}
	for i, j := range jobs {
		es[i] = entry[J]{job: j, ctx: ctx, done: make(chan struct{}), err: &dropped}
	}
	b.later = append(b.later, es...)
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
	for _, e := range es {
		<-e.done
	}
	return dropped
}

// takeLater returns the oldest later job, if any.
func (b *Batcher[J]) takeLater() (entry[J], bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.later) == 0 {
		return entry[J]{}, false
	}
	e := b.later[0]
	b.later[0] = entry[J]{}
	b.later = b.later[1:]
	if len(b.later) > 0 {
		// Another runner (NewParallel) may take the next one.
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return e, true
}

// Close stops taking jobs after the batch in hand is committed; later jobs
// not taken by then fail (DoLater returns apperr.ErrUnavailable).
func (b *Batcher[J]) Close() {
	close(b.stop)
	<-b.done
	b.mu.Lock()
	b.shut = true
	rest := b.later
	b.later = nil
	b.mu.Unlock()
	for _, e := range rest {
		*e.err = fmt.Errorf("%w: shutting down", apperr.ErrUnavailable)
		close(e.done)
	}
}

func (b *Batcher[J]) run() {
	batch := make([]entry[J], 0, b.max)
	jobs := make([]J, 0, b.max)
	for {
		batch = batch[:0]
		select {
		case <-b.stop: // before any waiting job: Close takes no new batch
			return
		default:
		}
		select {
		case e := <-b.in:
			batch = append(batch, e)
		case <-b.kick:
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
		// At most one later job, after the waiting callers of Do.
		if e, ok := b.takeLater(); ok {
			batch = append(batch, e)
		}
		if len(batch) == 0 {
			continue // a kick whose job another runner took
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
