package apply

import (
	"context"

	"github.com/apitosms/apitosms/libs/groupcommit"
	"github.com/apitosms/apitosms/services/status/internal/store"
)

// maxGroup bounds the requests sharing one transaction.
const maxGroup = 64

// pgWorkers is how many group transactions run at once on PostgreSQL;
// SQLite has one writer.
const pgWorkers = 4

// committer is group commit: the work of requests waiting at the same
// moment runs in one transaction, one after the other in it, so the rules
// hold exactly as if each had its own, and they share one commit (SQLite has
// one writer; PostgreSQL would flush its WAL once per request). Work must be
// re-runnable: when a shared transaction fails, each work runs again in a
// transaction of its own, so one failure does not fail the others.
type committer struct {
	b *groupcommit.Batcher[*job]
}

type job struct {
	work   func(ctx context.Context, q *store.Queries) (*ticket, error)
	ticket *ticket // the event work wrote in the outbox, if any
	err    error
}

func newCommitter(st *store.Store, r *relay, c *coalescer) *committer {
	workers := 1
	if st.Postgres() {
		workers = pgWorkers
	}
	return &committer{b: groupcommit.NewParallel(workers, maxGroup, func(ctx context.Context, group []*job) {
		commitGroup(ctx, st, r, c, group)
	}, nil)}
}

// commitGroup runs the group in one transaction, or each work alone if that
// fails (groupcommit.SharedTx). The shared transaction also deletes the
// outbox events published since the last group (outbox.go): no commit of
// their own while reports flow. The events of the jobs that committed go
// to the coalescer together, to be published as one message.
func commitGroup(ctx context.Context, st *store.Store, r *relay, c *coalescer, group []*job) {
	published := r.takeDone()
	err := groupcommit.SharedTx[*job, *store.Queries]{
		InTx: st.InTx,
		Run: func(ctx context.Context, q *store.Queries, j *job) (err error) {
			j.ticket, err = j.work(ctx, q)
			return err
		},
		Done: func(j *job, err error) {
			if j.err = err; err != nil {
				j.ticket = nil
			}
		},
		Before: func(ctx context.Context, q *store.Queries) error { return q.DeleteOutbox(ctx, published) },
	}.Commit(ctx, group)
	if err != nil {
		r.putBack(published)
	}
	var ts []*ticket
	for _, j := range group {
		if j.ticket != nil {
			ts = append(ts, j.ticket)
		}
	}
	c.enqueue(ts)
}

// do runs work in a shared transaction and returns once it is committed or
// failed, with the ticket of the event work wrote if it committed (its
// publish is under way). Once handed over, work runs even if ctx ends
// meanwhile.
func (c *committer) do(ctx context.Context, work func(ctx context.Context, q *store.Queries) (*ticket, error)) (*ticket, error) {
	j := &job{work: work}
	if err := c.b.Do(ctx, j); err != nil {
		return nil, err
	}
	return j.ticket, j.err
}

// close stops taking work after the group in hand is committed.
func (c *committer) close() { c.b.Close() }
