// Package apply applies phones' delivery reports (contract §4) to the
// deliveries table and announces the changes on the reported stream.
package apply

import (
	"cmp"
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/consumer"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/services/status/internal/metrics"
	"github.com/apitosms/apitosms/services/status/internal/store"
)

// Per-entry error sentences of the contract.
const (
	ErrInvalidStatus = "Invalid status"
	ErrUnknownHash   = "Unknown hash"
	ErrAlreadyFinal  = "Status already final"
)

// publishTimeout bounds the ReportedBatch publish, which runs even when the
// request's context is cancelled: the outcome is already stored.
const publishTimeout = 5 * time.Second

// Applier applies ApplyRequests.
type Applier struct {
	store   *store.Store
	js      jetstream.JetStream
	names   events.Names
	catchUp *consumer.CatchUp
	commit  *committer // group commit
	relay   *relay     // the reported outbox (outbox.go)
	pub     *coalescer // the fast path's publishes (coalesce.go)
	metrics *metrics.Metrics
	log     *slog.Logger
	now     func() time.Time
}

// New returns an applier; Stop it when done. catchUp waits for the ingest
// consumer when a request names messages not recorded yet. Concurrent
// requests share transactions (group commit: one commit, one fsync, for
// all the phones reporting at that moment) and stream messages (up to
// publishers publishes in flight, each of what committed meanwhile).
func New(st *store.Store, js jetstream.JetStream, names events.Names, catchUp *consumer.CatchUp,
	m *metrics.Metrics, log *slog.Logger, publishers int) *Applier {
	r := newRelay(st, js, names, m, log)
	maxPayload := 0
	if nc := js.Conn(); nc != nil {
		maxPayload = int(nc.MaxPayload())
	}
	c := newCoalescer(r, publishers, maxPayload)
	return &Applier{
		store: st, js: js, names: names, metrics: m, log: log, now: time.Now,
		catchUp: catchUp, commit: newCommitter(st, r, c), relay: r, pub: c,
	}
}

// Relay publishes, every interval until ctx is done, the outbox events
// older than age that no request published (a failed publish, a crashed
// process), then deletes what was published.
func (a *Applier) Relay(ctx context.Context, interval, age time.Duration) {
	a.relay.run(ctx, interval, age)
}

// Flush deletes the outbox events published since the last group commit.
func (a *Applier) Flush(ctx context.Context) { a.relay.flush(ctx) }

// Stop ends group commit after the group in hand and publishes what it
// committed; later Applys fail with apperr.ErrUnavailable.
func (a *Applier) Stop() {
	a.commit.close()
	a.pub.close()
}

// Apply applies the reports of one request as if one by one in index order:
// an entry asking a status other than 2 or 3 is "Invalid status"; a position
// unknown or of another account is "Unknown hash" (and never changed); a
// message with status 0 or 1 takes the asked status; asking the status a
// message already has counts as updated; asking the other final status is
// "Status already final". Positions missing at first are tried again once the
// ingest consumer has stored the accepted stream up to the newest of them
// (read-your-writes);
// if it does not within the catch-up timeout the error is
// apperr.ErrUnavailable (entries already applied stay applied, and a retry is
// safe). The messages changed are announced by a ReportedBatch written in
// the transaction that changed them (the outbox, outbox.go) and published
// before the reply, in one stream message with those of the requests that
// committed with it (coalesce.go); a failed publish is logged and counted
// but does not fail the request: the relay publishes the event later.
func (a *Applier) Apply(ctx context.Context, req events.ApplyRequest) (events.ApplyReply, error) {
	reports := slices.Clone(req.Reports)
	slices.SortStableFunc(reports, func(x, y events.ApplyReport) int { return cmp.Compare(x.Index, y.Index) })

	// The first valid entry of a message decides what is asked of it.
	asked := make(map[int64]int, len(reports))
	var positions []int64 // in index order of first appearance
	for _, r := range reports {
		if !validStatus(r.Status) || r.Pos <= 0 { // position 0: a hash ingress could not decode
			continue
		}
		if _, seen := asked[r.Pos]; !seen {
			asked[r.Pos] = r.Status
			positions = append(positions, r.Pos)
		}
	}

	at := a.now().UTC().Truncate(time.Microsecond)
	res, err := a.settle(ctx, req, asked, positions, at)
	if err == nil && len(res.missing) > 0 {
		// Wait only until the ingest consumer has stored the newest of
		// them, not for everything published since.
		var waited time.Duration
		waited, err = a.catchUp.WaitFor(ctx, uint64(slices.Max(res.missing))>>events.PositionShift)
		a.metrics.ApplyWait.Observe(waited.Seconds())
		if err == nil {
			var again settled
			if again, err = a.settle(ctx, req, asked, res.missing, at); err == nil {
				res.merge(again)
			}
		}
	}
	final := res.final
	for _, t := range res.outbox {
		// Bounded by publishTimeout, even when ctx is cancelled: the
		// event is stored.
		if perr := <-t.done; perr != nil {
			a.metrics.PublishFailures.Inc()
			a.log.Warn("publish reported batch failed; the outbox relay retries it",
				"event", t.id, "err", perr)
		}
	}
	if err != nil {
		return events.ApplyReply{}, err
	}

	reply := events.ApplyReply{Errors: []events.IndexError{}}
	counts := map[string]int{}
	for _, r := range reports {
		outcome, sentence := metrics.OutcomeUpdated, ""
		st, known := final[r.Pos]
		switch {
		case !validStatus(r.Status):
			outcome, sentence = metrics.OutcomeInvalid, ErrInvalidStatus
		case !known:
			outcome, sentence = metrics.OutcomeUnknown, ErrUnknownHash
		case st != r.Status:
			outcome, sentence = metrics.OutcomeConflict, ErrAlreadyFinal
		}
		counts[outcome]++
		if sentence == "" {
			reply.Updated++
		} else {
			reply.Errors = append(reply.Errors, events.IndexError{Index: r.Index, Error: sentence})
		}
	}
	for outcome, n := range counts {
		a.metrics.Reports.WithLabelValues(outcome).Add(float64(n))
	}
	return reply, nil
}

// settled is what settling some positions found.
type settled struct {
	final   map[int64]int  // status of each known message after its first entry
	changed map[int64]bool // messages this request changed
	missing []int64        // positions not found: unknown, another account's, or not ingested yet
	outbox  []*ticket      // the events written, being published
}

func (r *settled) merge(o settled) {
	maps.Copy(r.final, o.final)
	maps.Copy(r.changed, o.changed)
	r.missing = o.missing
	r.outbox = append(r.outbox, o.outbox...)
}

// settle runs settleWith in a shared transaction.
func (a *Applier) settle(ctx context.Context, req events.ApplyRequest, asked map[int64]int, positions []int64, at time.Time) (settled, error) {
	var res settled
	t, err := a.commit.do(ctx, func(ctx context.Context, q *store.Queries) (*ticket, error) {
		var err error
		if res, err = settleWith(ctx, q, req, asked, positions, at); err != nil || len(res.changed) == 0 {
			return nil, err
		}
		ev := reportedBatch(req.AccountID, req.Device, at, positions, asked, res.changed)
		data, err := events.Marshal(ev)
		if err != nil {
			return nil, err
		}
		id, err := q.AddOutbox(ctx, encodeOutbox(ev), a.now())
		if err != nil {
			return nil, err
		}
		return &ticket{id: id, payload: data, items: len(ev.Items), done: make(chan error, 1)}, nil
	})
	if t != nil {
		res.outbox = []*ticket{t}
	}
	return res, err
}

// settleWith sets the asked status on those of positions not final yet (one
// statement per asked status), then looks up the others (one statement). It
// only reads its arguments, so it can run again after a rollback.
func settleWith(ctx context.Context, q *store.Queries, req events.ApplyRequest, asked map[int64]int, positions []int64, at time.Time) (settled, error) {
	res := settled{final: make(map[int64]int, len(positions)), changed: make(map[int64]bool, len(positions))}
	for _, status := range []int{events.StatusSent, events.StatusFailed} {
		var group []int64
		for _, p := range positions {
			if asked[p] == status {
				group = append(group, p)
			}
		}
		done, err := q.MarkFinal(ctx, req.AccountID, group, status, req.Device, at)
		if err != nil {
			return settled{}, err
		}
		for _, p := range done {
			res.final[p], res.changed[p] = status, true
		}
	}
	var rest []int64
	for _, p := range positions {
		if !res.changed[p] {
			rest = append(rest, p)
		}
	}
	statuses, err := q.Statuses(ctx, req.AccountID, rest)
	if err != nil {
		return settled{}, err
	}
	for _, p := range rest {
		// Below final only if it was ingested after MarkFinal looked: retry.
		if st, ok := statuses[p]; ok && st >= events.StatusSent {
			res.final[p] = st
		} else {
			res.missing = append(res.missing, p)
		}
	}
	return res, nil
}

// reportedBatch announces the messages of positions this request changed,
// with the reporting device (tracking shows it), in index order.
func reportedBatch(accountID int64, device string, at time.Time, positions []int64, asked map[int64]int, changed map[int64]bool) events.ReportedBatch {
	ev := events.ReportedBatch{AccountID: accountID, ReportedAt: at, Device: device, Items: make([]events.Reported, 0, len(changed))}
	for _, p := range positions {
		if changed[p] {
			ev.Items = append(ev.Items, events.Reported{Pos: p, Status: asked[p]})
		}
	}
	return ev
}

func validStatus(s int) bool { return s == events.StatusSent || s == events.StatusFailed }
