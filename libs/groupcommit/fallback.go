package groupcommit

import "context"

// SharedTx is how a group's jobs reach the database: InTx runs fn in a
// transaction of its own and commits it when fn returns nil (T is what fn
// works with in it: a *sql.Tx, a bun.Tx, a store's queries).
type SharedTx[J, T any] struct {
	// InTx runs fn in one transaction and returns fn's or the commit's error.
	InTx func(ctx context.Context, fn func(ctx context.Context, tx T) error) error
	// Run does job j in tx and sets its outputs; it must be re-runnable
	// (after a failed shared transaction, j runs again alone).
	Run func(ctx context.Context, tx T, j J) error
	// Done learns j's outcome: nil once the transaction that ran j
	// committed, else the error (Done must then drop the outputs Run set).
	Done func(j J, err error)
	// Before, if not nil, runs first in the shared transaction only: work
	// of the group as a whole, dropped with it if that transaction fails.
	Before func(ctx context.Context, tx T) error
}

// Commit runs the jobs of group, in order, in one shared transaction (one
// commit), each seeing what those before it wrote. If that transaction fails
// (a job, Before or the commit) and the group has more than one job, each
// job runs again, in order, in a transaction of its own: one failing job then
// fails alone, and every other gets exactly the result it would have had
// alone in that order. A group of one is not run twice: its job gets the
// shared transaction's error. Done learns every job's outcome. Commit
// returns the shared transaction's error.
func (x SharedTx[J, T]) Commit(ctx context.Context, group []J) error {
	if len(group) == 0 {
		return nil
	}
	err := x.InTx(ctx, func(ctx context.Context, tx T) error {
		if x.Before != nil {
			if err := x.Before(ctx, tx); err != nil {
				return err
			}
		}
		for _, j := range group {
			if err := x.Run(ctx, tx, j); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(group) == 1 {
		for _, j := range group {
			x.Done(j, err)
		}
		return err
	}
	for _, j := range group {
		x.Done(j, x.InTx(ctx, func(ctx context.Context, tx T) error { return x.Run(ctx, tx, j) }))
	}
	return err
}
