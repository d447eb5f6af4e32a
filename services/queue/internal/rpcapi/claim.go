// Package rpcapi answers the queue's NATS requests.
package rpcapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/consumer"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/services/queue/internal/metrics"
	"github.com/apitosms/apitosms/services/queue/internal/notify"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// MaxClaim is the most messages one claim hands out (contract §3).
const MaxClaim = 200

var errBadAccount = apperr.New(http.StatusBadRequest, "bad_request", "accountId must be positive")

// replyMargin is kept from a caller's wait (ClaimRequest.WaitMs) for the
// reply's way back: a claim is not started unless its answer can still
// arrive in time.
const replyMargin = 50 * time.Millisecond

// Claims answers ClaimRequest.
type Claims struct {
	st      *store.ClaimGroup
	wait    *consumer.CatchUp
	m       *metrics.Metrics
	confirm time.Duration // how long a confirmed claim waits for its ack
	// initiated publishes message.initiated events (nil: none).
	initiated *notify.Initiated
}

// PublishInitiated makes Claim publish message.initiated (for the accounts
// subscribed to it) before it answers.
func (c *Claims) PublishInitiated(i *notify.Initiated) *Claims {
	c.initiated = i
	return c
}

// NewClaims returns the claim handler, claiming through st. A claim asked
// to be confirmed is swept back if not acknowledged within confirm.
func NewClaims(st *store.ClaimGroup, wait *consumer.CatchUp, m *metrics.Metrics, confirm time.Duration) *Claims {
	return &Claims{st: st, wait: wait, m: m, confirm: confirm}
}

// Register serves Claim on n.QueueClaim().
func (c *Claims) Register(srv *rpc.Server, n events.Names) error {
	return rpc.Handle(srv, n.QueueClaim(), "claim", c.Claim)
}

// Claim hands out up to req.Limit (clamped to 1..MaxClaim) of the account's
// oldest new messages, oldest first, marking them initiated, and sees every
// message accepted before the call (read-your-writes).
//
// It first claims among the positions the ingest consumer is known to have
// stored completely (up to its ack floor): everything not stored yet is newer
// than all of those, so when that fills the limit the answer is exactly the
// FIFO one and nobody waits for ingestion, even with a large backlog. Only a
// claim that comes up short waits until ingestion has caught up with the
// stream, then takes the rest; if ingestion does not catch up in time it
// returns apperr.ErrUnavailable (after handing out nothing, or an error after
// the first part: see below). The reply's Messages is never nil.
//
// With req.Confirm, each part that claimed something is recorded as an open
// claim whose id is in the reply's ClaimIDs: its messages go back to new if
// no ClaimAck closes it within the confirm timeout. With req.WaitMs, work
// not started before the caller stops waiting is not done (the group commit
// skips a claim whose context has ended).
func (c *Claims) Claim(ctx context.Context, req events.ClaimRequest) (events.ClaimReply, error) {
	if req.AccountID <= 0 {
		return events.ClaimReply{}, errBadAccount
	}
	limit := min(max(req.Limit, 1), MaxClaim)
	now := time.Now()
	if req.WaitMs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, now.Add(time.Duration(req.WaitMs)*time.Millisecond-replyMargin))
		defer cancel()
	}
	var ids []int64
	confirm := func() store.Confirm {
		if !req.Confirm {
			return store.Confirm{}
		}
		id := store.NewClaimID()
		ids = append(ids, id)
		return store.Confirm{ID: id, Expires: time.Now().Add(c.confirm)}
	}
	stored := events.Position(c.wait.Floor(), events.MaxItemsPerEvent-1)
	claimed, err := c.st.Claim(ctx, req.AccountID, limit, stored, now, confirm())
	if err != nil {
		return events.ClaimReply{}, gaveUp(ctx, err)
	}
	if len(claimed) == 0 {
		ids = ids[:0] // nothing recorded
	}
	if len(claimed) < limit {
		waited, err := c.wait.Wait(ctx)
		c.m.ClaimWait.Observe(waited.Seconds())
		if err != nil && len(claimed) == 0 {
			return events.ClaimReply{}, err
		}
		// With some messages already marked initiated, answer with them
		// rather than fail: they are the oldest, so the answer is a correct
		// FIFO prefix, and the phone polls again for the rest.
		if err == nil {
			// Bounded by the ack floor again, not unbounded: rows past it
			// may be stored out of order (another replica committed a later
			// batch while this one's is still in flight), and taking them
			// would hand a merchant's messages out of FIFO order. The floor
			// now covers every message accepted before this call.
			bound := events.Position(c.wait.Floor(), events.MaxItemsPerEvent-1)
			first := len(ids)
			more, err := c.st.Claim(ctx, req.AccountID, limit-len(claimed), bound, now, confirm())
			if err != nil && len(claimed) == 0 {
				return events.ClaimReply{}, gaveUp(ctx, err)
			}
			if err != nil || len(more) == 0 {
				ids = ids[:first] // nothing recorded: answer with the first part
			}
			claimed = append(claimed, more...)
			store.SortHandOut(claimed) // a high message of the second part goes first
		}
	}
	out := make([]events.ClaimedSMS, len(claimed))
	for i, m := range claimed {
		out[i] = events.ClaimedSMS{Pos: m.Pos, Phone: m.Phone, Text: m.Text}
	}
	if c.initiated != nil && len(out) > 0 {
		positions := make([]int64, len(out))
		for i, m := range out {
			positions[i] = m.Pos
		}
		if err := c.initiated.Claimed(ctx, req.AccountID, positions); err != nil {
			// Not answered: the claim is never confirmed and goes back to new.
			return events.ClaimReply{}, fmt.Errorf("%w: publish message.initiated: %w", apperr.ErrUnavailable, err)
		}
	}
	c.m.Claimed.Add(float64(len(out)))
	return events.ClaimReply{Messages: out, ClaimIDs: ids}, nil
}

// gaveUp turns the error of a claim the caller stopped waiting for (its
// context ended: nothing was claimed) into apperr.ErrUnavailable, which
// needs no log line.
func gaveUp(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w: %w", apperr.ErrUnavailable, err)
	}
	return err
}
