// Package rpcapi answers the queue's NATS requests.
package rpcapi

import (
	"context"
	"net/http"
	"time"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/consumer"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/services/queue/internal/metrics"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// MaxClaim is the most messages one claim hands out (contract §3).
const MaxClaim = 200

var errBadAccount = apperr.New(http.StatusBadRequest, "bad_request", "accountId must be positive")

// Claims answers ClaimRequest.
type Claims struct {
	st   *store.ClaimGroup
	wait *consumer.CatchUp
	m    *metrics.Metrics
}

// NewClaims returns the claim handler, claiming through st.
func NewClaims(st *store.ClaimGroup, wait *consumer.CatchUp, m *metrics.Metrics) *Claims {
	return &Claims{st: st, wait: wait, m: m}
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
func (c *Claims) Claim(ctx context.Context, req events.ClaimRequest) (events.ClaimReply, error) {
	if req.AccountID <= 0 {
		return events.ClaimReply{}, errBadAccount
	}
	limit := min(max(req.Limit, 1), MaxClaim)
	now := time.Now()
	stored := events.Position(c.wait.Floor(), events.MaxItemsPerEvent-1)
	claimed, err := c.st.Claim(ctx, req.AccountID, limit, stored, now)
	if err != nil {
		return events.ClaimReply{}, err
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
			more, err := c.st.Claim(ctx, req.AccountID, limit-len(claimed), bound, now)
			if err != nil {
				return events.ClaimReply{}, err
			}
			claimed = append(claimed, more...)
		}
	}
	out := make([]events.ClaimedSMS, len(claimed))
	for i, m := range claimed {
		out[i] = events.ClaimedSMS{Pos: m.Pos, Phone: m.Phone, Text: m.Text}
	}
	c.m.Claimed.Add(float64(len(out)))
	return events.ClaimReply{Messages: out}, nil
}
