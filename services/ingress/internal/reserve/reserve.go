// Package reserve asks billing for quota on behalf of queue requests.
//
// One message per request (a shop's order SMS) made one billing call per
// request: a NATS request and reply, four JSON codecs and a handler turn,
// although billing then applied the concurrent calls in one transaction
// anyway. The Reserver lets concurrent requests share the call: while the
// calls in flight are answered, the requests arriving meanwhile gather, and
// the next call carries them all (billing.v1.reserve-many), applied by
// billing in arrival order in one transaction. Each request gets exactly
// the grant it would have had alone in that order, so the quota stays as
// exact as before, across replicas too (billing decides, not ingress). An
// idle server adds no delay: a request finding a loop free is sent at once.
package reserve

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/groupcommit"
	"github.com/apitosms/apitosms/libs/rpc"
)

// MaxGroup is the most reservations one call carries.
const MaxGroup = 256

// Reserver sends reservations to billing, sharing calls between concurrent
// requests. Run sends them.
type Reserver struct {
	nc    *nats.Conn
	names events.Names
	g     *groupcommit.Gatherer[*pending]
}

type pending struct {
	req      events.ReserveRequest
	deadline time.Time // the caller's; zero: none
	done     chan outcome
}

type outcome struct {
	rep events.ReserveReply
	err error
}

// New returns a reserver calling billing through nc.
func New(nc *nats.Conn, names events.Names) *Reserver {
	r := &Reserver{nc: nc, names: names}
	r.g = groupcommit.NewGatherer(func(waiting []*pending) int { return MaxGroup }, r.send)
	return r
}

// Run runs n sending loops until ctx is done; then it sends what is still
// waiting and returns. Reservations may be handed over before Run starts:
// they wait.
func (r *Reserver) Run(ctx context.Context, n int) {
	r.g.Start(n)
	<-ctx.Done()
	r.g.Close()
}

// Reserve takes up to count messages of this month's quota of account, as
// billing's Reserve does (its reply, or its error: account_not_found, or
// apperr.ErrUnavailable when billing did not answer). It fails with ctx's
// error only before the reservation was handed over; afterwards it waits
// for the answer (bounded by ctx's deadline, as the call is), so a grant is
// never lost to a caller that would then not release it.
func (r *Reserver) Reserve(ctx context.Context, account int64, count int) (events.ReserveReply, error) {
	if err := ctx.Err(); err != nil {
		return events.ReserveReply{}, err
	}
	p := &pending{req: events.ReserveRequest{AccountID: account, Count: count}, done: make(chan outcome, 1)}
	p.deadline, _ = ctx.Deadline()
	if !r.g.Add(p) {
		return events.ReserveReply{}, fmt.Errorf("reserve: %w: shutting down", apperr.ErrUnavailable)
	}
	o := <-p.done
	return o.rep, o.err
}

// send makes one call for group and answers each of its reservations.
func (r *Reserver) send(group []*pending) {
	// The call is bounded as the most pressed caller's own call would be.
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	var soonest time.Time
	for _, p := range group {
		if !p.deadline.IsZero() && (soonest.IsZero() || p.deadline.Before(soonest)) {
			soonest = p.deadline
		}
	}
	if !soonest.IsZero() {
		ctx, cancel = context.WithDeadline(ctx, soonest)
	}
	defer cancel()
	if len(group) == 1 {
		rep, err := r.one(ctx, group[0].req)
		group[0].done <- outcome{rep: rep, err: err}
		return
	}
	req := events.ReserveManyRequest{Items: make([]events.ReserveRequest, len(group))}
	for i, p := range group {
		req.Items[i] = p.req
	}
	reply, err := rpc.Call[events.ReserveManyRequest, events.ReserveManyReply](ctx, r.nc, r.names.BillingReserveMany(), req)
	if errors.Is(err, nats.ErrNoResponders) {
		// A billing from before reserve-many (a rolling upgrade): one call each.
		for _, p := range group {
			rep, err := r.one(ctx, p.req)
			p.done <- outcome{rep: rep, err: err}
		}
		return
	}
	if err == nil && len(reply.Items) != len(group) {
		err = fmt.Errorf("reserve-many: %d answers for %d reservations", len(reply.Items), len(group))
	}
	for i, p := range group {
		if err != nil {
			p.done <- outcome{err: err}
			continue
		}
		it := reply.Items[i]
		if it.Err != nil {
			p.done <- outcome{err: apperr.New(it.Err.Status, it.Err.Code, it.Err.Message)}
			continue
		}
		p.done <- outcome{rep: it.ReserveReply}
	}
}

func (r *Reserver) one(ctx context.Context, req events.ReserveRequest) (events.ReserveReply, error) {
	return rpc.Call[events.ReserveRequest, events.ReserveReply](ctx, r.nc, r.names.BillingReserve(), req)
}
