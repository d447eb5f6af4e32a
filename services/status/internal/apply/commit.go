package apply

import (
	"context"
	"fmt"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/services/status/internal/store"
)

// maxGroup bounds the requests sharing one transaction.
const maxGroup = 64

// committer is group commit for SQLite, whose single connection makes every
// commit (and its fsync) a turn of its own: work of the requests waiting at
// the same moment runs in one transaction, one after the other in it, so
// the rules hold exactly as if each had its own. Work must be re-runnable:
// when a shared transaction fails, each work runs again in a transaction of
// its own, so one failure does not fail the others.
type committer struct {
	store *store.Store
	jobs  chan *job
	stop  chan struct{}
	done  chan struct{}
}

type job struct {
	ctx  context.Context
	work func(ctx context.Context, q *store.Queries) error
	err  chan error
}

func newCommitter(st *store.Store) *committer {
	return &committer{store: st, jobs: make(chan *job), stop: make(chan struct{}), done: make(chan struct{})}
}

// run commits groups until stop is closed.
func (c *committer) run() {
	defer close(c.done)
	for {
		var first *job
		select {
		case first = <-c.jobs:
		case <-c.stop:
			return
		}
		group := []*job{first}
	more:
		for len(group) < maxGroup {
			select {
			case j := <-c.jobs:
				group = append(group, j)
			default:
				break more
			}
		}
		c.commit(group)
	}
}

func (c *committer) commit(group []*job) {
	// The group's transaction is not cut short by one caller's deadline.
	ctx := context.WithoutCancel(group[0].ctx)
	err := c.store.InTx(ctx, func(ctx context.Context, q *store.Queries) error {
		for _, j := range group {
			if err := j.work(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(group) == 1 {
		for _, j := range group {
			j.err <- err
		}
		return
	}
	for _, j := range group {
		j.err <- c.store.InTx(ctx, j.work)
	}
}

// do runs work in a shared transaction and returns once it is committed or
// failed. Once handed over, work runs even if ctx ends meanwhile.
func (c *committer) do(ctx context.Context, work func(ctx context.Context, q *store.Queries) error) error {
	j := &job{ctx: ctx, work: work, err: make(chan error, 1)}
	select {
	case c.jobs <- j:
	case <-c.stop:
		return fmt.Errorf("%w: status service stopping", apperr.ErrUnavailable)
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-j.err
}

// close stops taking work after the group in hand is committed.
func (c *committer) close() {
	close(c.stop)
	<-c.done
}
