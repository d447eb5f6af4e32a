package store

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitosms/apitosms/libs/groupcommit"
)

// maxClaimGroup bounds the claims sharing one transaction.
const maxClaimGroup = 32

// pgClaimWorkers is how many claim transactions run at once on PostgreSQL.
const pgClaimWorkers = 4

// ClaimGroup is group commit for claims: every commit costs an fsync (on
// SQLite, whose single connection makes each commit a turn of its own, and
// on PostgreSQL, where phones polling at once would each wait for their
// own WAL flush). One goroutine takes
// the first waiting claim plus those already queued behind it (up to
// maxClaimGroup) and runs them one after the other in one immediate
// transaction with one commit. Each claim sees the rows the claims before it
// marked, so the result is exactly that of running them alone in that order:
// each caller gets its own rows, oldest first, at most its limit, and no
// message is handed out twice. If the shared transaction fails, each claim
// runs again alone, so one failing claim cannot fail the others.
//
// On PostgreSQL the claims of a group run in one transaction too; SKIP
// LOCKED keeps them apart from other replicas' groups, and a claim sees the
// rows the claims before it in its group marked.
//
// Acks (Ack) join the same groups: on SQLite an ack then costs no commit of
// its own. So do reports on SQLite (RecordReports): the phones' reports and
// polls then share commits (one fsync, and the pages both write, such as
// the backlog counts, written once), in the order they reached the group.
//
// Callers wait for ingestion (read-your-writes) before calling Claim.
type ClaimGroup struct {
	st    *Store
	b     *groupcommit.Batcher[*claimJob]
	mu    sync.Mutex // guards stmts' preparation
	stmts claimStmts // the claim path's statements, prepared once (safe for concurrent use)
}

type claimJob struct {
	ctx       context.Context
	accountID int64
	limit     int
	maxPos    int64
	now       time.Time
	confirm   Confirm
	acks      []int64 // an ack job: close these claims instead of claiming
	acked     int64
	reports   []Report                 // a report job: record these instead of claiming
	tell      func(account int64) bool // the report job's tell (RecordReports)
	recorded  Recorded
	out       []Claimed
	err       error
}

// NewClaimGroup returns a claim group on s and, on SQLite, starts its
// goroutine; Close stops it. size, if not nil, observes the claims of each
// shared transaction.
func (s *Store) NewClaimGroup(size prometheus.Observer) *ClaimGroup {
	g := &ClaimGroup{st: s}
	var observe func(int)
	if size != nil {
		observe = func(n int) { size.Observe(float64(n)) }
	}
	// SQLite has one writer; PostgreSQL takes a few groups at once, so one
	// slow claim (a busy account's index, concurrent ingest) does not hold
	// up every phone.
	workers := 1
	if s.pg {
		workers = pgClaimWorkers
	}
	g.b = groupcommit.NewParallel(workers, maxClaimGroup, g.commit, observe)
	return g
}

// Claim is Store.Claim, sharing a transaction with concurrent claims. A
// claim whose ctx ends before its group starts is not run (Claim returns
// ctx.Err()); once its group started it runs to the end and Claim returns
// its result. After Close, Claim fails with apperr.ErrUnavailable.
func (g *ClaimGroup) Claim(ctx context.Context, accountID int64, limit int, maxPos int64, now time.Time, confirm Confirm) ([]Claimed, error) {
	j := &claimJob{ctx: ctx, accountID: accountID, limit: limit, maxPos: maxPos, now: now, confirm: confirm}
	if err := g.b.Do(ctx, j); err != nil {
		return nil, err
	}
	return j.out, j.err
}

// Ack is Store.Ack, sharing a transaction with concurrent claims.
func (g *ClaimGroup) Ack(ctx context.Context, ids []int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	j := &claimJob{ctx: ctx, acks: ids}
	if err := g.b.Do(ctx, j); err != nil {
		return 0, err
	}
	return j.acked, j.err
}

// RecordReports is Store.RecordReports; on SQLite it shares a transaction
// with concurrent claims and acks (on PostgreSQL, whose claim groups run in
// parallel, it runs alone as before: its row locks then never wait on a
// group's). After Close it fails with apperr.ErrUnavailable on SQLite.
func (g *ClaimGroup) RecordReports(ctx context.Context, reports []Report, tell func(account int64) bool) (Recorded, error) {
	if g.st.pg || !anyOutcome(reports) {
		return g.st.RecordReports(ctx, reports, tell)
	}
	j := &claimJob{ctx: ctx, reports: reports, tell: tell}
	if err := g.b.Do(ctx, j); err != nil {
		return Recorded{}, err
	}
	return j.recorded, j.err
}

// Close stops taking claims after the group in hand is committed.
func (g *ClaimGroup) Close() {
	g.b.Close()
	for _, st := range []*sql.Stmt{g.stmts.claim, g.stmts.claimTold, g.stmts.record, g.stmts.ack} {
		if st != nil {
			st.Close()
		}
	}
}

// commit runs the group's live claims in one transaction, or each alone if
// that fails (groupcommit.SharedTx), and sets every job's result.
func (g *ClaimGroup) commit(ctx context.Context, group []*claimJob) {
	live := group[:0:0]
	for _, j := range group {
		if j.err = j.ctx.Err(); j.err == nil {
			live = append(live, j)
		}
	}
	if len(live) == 0 {
		return
	}
	stmts := g.prepare(ctx)
	var rstmts *reportStmts
	var rerr error
	for _, j := range live {
		if j.reports != nil {
			// Before the transaction (one connection); on failure the
			// report jobs fail and their batches are redelivered.
			rstmts, rerr = g.st.reportStatements(ctx)
			break
		}
	}
	_ = groupcommit.SharedTx[*claimJob, countedTx]{
		InTx: func(ctx context.Context, fn func(context.Context, countedTx) error) error {
			return g.st.inTx(ctx, func(tx *sql.Tx, d *backlogDelta) error { return fn(ctx, countedTx{tx, d}) })
		},
		Run: func(ctx context.Context, tx countedTx, j *claimJob) error {
			if j.reports != nil && rstmts == nil {
				return rerr
			}
			return g.run(ctx, tx, stmts, rstmts, j)
		},
		Done: func(j *claimJob, err error) {
			if j.err = err; err != nil {
				j.out, j.acked, j.recorded = nil, 0, Recorded{}
			}
		},
	}.Commit(ctx, live)
}

// countedTx is a group's transaction with what its claims change in the
// backlog counts, written once when the group commits.
type countedTx struct {
	tx *sql.Tx
	d  *backlogDelta
}

// run runs j (a claim, an ack or reports) in tx, setting its result.
func (g *ClaimGroup) run(ctx context.Context, tx countedTx, stmts claimStmts, rstmts *reportStmts, j *claimJob) error {
	var err error
	switch {
	case j.acks != nil:
		j.acked, err = g.st.ackIn(ctx, tx.tx, stmts.ack, j.acks)
	case j.reports != nil:
		j.recorded, err = g.st.recordReportsIn(ctx, tx.tx, rstmts, tx.d, j.reports, j.tell)
	default:
		j.out, err = g.st.claimIn(ctx, tx.tx, stmts, tx.d, j.accountID, j.limit, j.maxPos, j.now, j.confirm)
	}
	return err
}

// prepare returns the claim path's statements, prepared on first use (the
// claim's record and the ack statements on SQLite only). It runs outside any transaction
// (on SQLite a transaction holds the only connection); a statement that
// fails to prepare is nil, runs unprepared, and the next group tries again.
func (g *ClaimGroup) prepare(ctx context.Context) claimStmts {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stmts.claim == nil {
		if st, err := g.st.sqlDB().PrepareContext(ctx, g.st.claimSQL()); err == nil {
			g.stmts.claim = st
		}
	}
	if g.st.pg {
		return g.stmts
	}
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{{&g.stmts.record, recordClaimSQLite}, {&g.stmts.ack, ackSQLite}, {&g.stmts.claimTold, claimToldSQLite}} {
		if *p.dst == nil {
			if st, err := g.st.sqlDB().PrepareContext(ctx, p.query); err == nil {
				*p.dst = st
			}
		}
	}
	return g.stmts
}
