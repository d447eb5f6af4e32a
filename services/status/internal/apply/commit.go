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
	work func(ctx context.Context, q *store.Queries) error
	err  error
}

func newCommitter(st *store.Store, r *relay) *committer {
	workers := 1
	if st.Postgres() {
		workers = pgWorkers
	}
	return &committer{b: groupcommit.NewParallel(workers, maxGroup, func(ctx context.Context, group []*job) {
		commitGroup(ctx, st, r, group)
	}, nil)}
}

// commitGroup runs the group in one transaction, or each work alone if that
// fails (groupcommit.SharedTx). The shared transaction also deletes the
// outbox events published since the last group (outbox.go): no commit of
// their own while reports flow.
func commitGroup(ctx context.Context, st *store.Store, r *relay, group []*job) {
	published := r.takeDone()
	err := groupcommit.SharedTx[*job, *store.Queries]{
		InTx:   st.InTx,
		Run:    func(ctx context.Context, q *store.Queries, j *job) error { return j.work(ctx, q) },
		Done:   func(j *job, err error) { j.err = err },
		Before: func(ctx context.Context, q *store.Queries) error { return q.DeleteOutbox(ctx, published) },
	}.Commit(ctx, group)
	if err != nil {
		r.putBack(published)
	}
}

// do runs work in a shared transaction and returns once it is committed or
// failed. Once handed over, work runs even if ctx ends meanwhile.
func (c *committer) do(ctx context.Context, work func(ctx context.Context, q *store.Queries) error) error {
	j := &job{work: work}
	if err := c.b.Do(ctx, j); err != nil {
		return err
	}
	return j.err
}

// close stops taking work after the group in hand is committed.
func (c *committer) close() { c.b.Close() }
