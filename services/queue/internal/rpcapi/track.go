package rpcapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/consumer"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/services/queue/internal/metrics"
	"github.com/apitosms/apitosms/services/queue/internal/store"
	"github.com/apitosms/apitosms/services/queue/internal/sweep"
)

// Errors of the tracking requests (contract §9).
var (
	ErrMessageNotFound = apperr.New(http.StatusNotFound, "message_not_found", "Message not found")
	ErrNotCancellable  = apperr.New(http.StatusConflict, "not_cancellable", "Message already handed out")
	errTooMany         = apperr.New(http.StatusBadRequest, "bad_request", "too many positions")
)

// Tracking answers LookupRequest, HistoryRequest and CancelRequest from the
// messages table, the tracking read model. Every answer sees the messages
// accepted and the reports applied before the request (read-your-writes):
// it first waits until the queue's consumers of the accepted and reported
// streams have processed what those streams held.
type Tracking struct {
	st       *store.Store
	accepted *consumer.CatchUp // queue-ingest on the accepted stream
	reported *consumer.CatchUp // queue-reported on the reported stream
	refunds  *sweep.Sweeper
	m        *metrics.Tracking
	maxReply int // bytes a reply may take (the connection's max payload, less headroom)
}

// NewTracking returns the tracking handlers. maxPayload is the NATS
// connection's largest message.
func NewTracking(st *store.Store, accepted, reported *consumer.CatchUp, refunds *sweep.Sweeper, m *metrics.Tracking, maxPayload int64) *Tracking {
	budget := int(min(maxPayload, math.MaxInt32))
	return &Tracking{st: st, accepted: accepted, reported: reported, refunds: refunds, m: m, maxReply: budget - budget/8 - 1024}
}

// Register serves the handlers on n's tracking subjects.
func (t *Tracking) Register(srv *rpc.Server, n events.Names) error {
	if err := rpc.Handle(srv, n.QueueLookup(), "lookup", t.Lookup); err != nil {
		return err
	}
	if err := rpc.Handle(srv, n.QueueHistory(), "history", t.History); err != nil {
		return err
	}
	return rpc.Handle(srv, n.QueueCancel(), "cancel", t.Cancel)
}

// caughtUp waits until the accepted stream is stored up to sequence seq and
// every report published so far is applied.
func (t *Tracking) caughtUp(ctx context.Context, seq uint64) error {
	if _, err := t.accepted.WaitFor(ctx, seq); err != nil {
		return err
	}
	_, err := t.reported.Wait(ctx)
	return err
}

// Lookup answers the account's messages among req.Positions (at most
// events.MaxLookup). It waits for ingestion only up to the newest position
// asked.
func (t *Tracking) Lookup(ctx context.Context, req events.LookupRequest) (events.LookupReply, error) {
	if req.AccountID <= 0 {
		return events.LookupReply{}, errBadAccount
	}
	if len(req.Positions) > events.MaxLookup {
		return events.LookupReply{}, errTooMany
	}
	newest := int64(0)
	for _, p := range req.Positions {
		newest = max(newest, p)
	}
	if err := t.caughtUp(ctx, uint64(newest)>>events.PositionShift); err != nil {
		return events.LookupReply{}, err
	}
	found, err := t.st.Lookup(ctx, req.AccountID, req.Positions)
	if err != nil {
		return events.LookupReply{}, err
	}
	byPos := make(map[int64]*store.Tracked, len(found))
	for i := range found {
		byPos[found[i].Pos] = &found[i]
	}
	reply := events.LookupReply{Messages: make([]events.TrackedSMS, 0, len(found)), Done: len(req.Positions)}
	size := 0
	for i, p := range req.Positions {
		m, ok := byPos[p]
		if !ok {
			continue
		}
		delete(byPos, p) // a position asked twice is answered once
		size += replySize(m)
		if size > t.maxReply && i > 0 {
			reply.Done = i
			break
		}
		reply.Messages = append(reply.Messages, tracked(m))
	}
	return reply, nil
}

// History answers one page of the account's messages, newest first. The
// first page starts at the newest message ingestion has stored completely
// once caught up: every later message has a higher position, so following
// Next never skips or repeats a message while new ones arrive.
func (t *Tracking) History(ctx context.Context, req events.HistoryRequest) (events.HistoryReply, error) {
	if req.AccountID <= 0 {
		return events.HistoryReply{}, errBadAccount
	}
	if err := t.caughtUp(ctx, math.MaxUint64); err != nil {
		return events.HistoryReply{}, err
	}
	limit := min(max(req.Limit, 1), events.MaxHistory)
	before := events.Position(t.accepted.Floor(), events.MaxItemsPerEvent-1) + 1
	if req.Before > 0 {
		before = min(before, req.Before)
	}
	rows, err := t.st.History(ctx, store.HistoryQuery{
		AccountID: req.AccountID, Before: before, Limit: limit + 1,
		Statuses: req.Statuses, Phone: req.Phone, From: req.From, To: req.To,
	})
	if err != nil {
		return events.HistoryReply{}, err
	}
	reply := events.HistoryReply{Messages: make([]events.TrackedSMS, 0, min(len(rows), limit))}
	size := 0
	for i := range rows {
		if i == limit {
			reply.Next = rows[i-1].Pos
			break
		}
		size += replySize(&rows[i])
		if size > t.maxReply && i > 0 {
			reply.Next = rows[i-1].Pos
			break
		}
		reply.Messages = append(reply.Messages, tracked(&rows[i]))
	}
	return reply, nil
}

// Cancel cancels the account's message at req.Pos if it is still new and
// gives its quota back (or leaves that to the sweeper if billing does not
// answer). Errors: ErrMessageNotFound, ErrNotCancellable.
func (t *Tracking) Cancel(ctx context.Context, req events.CancelRequest) (events.CancelReply, error) {
	if req.AccountID <= 0 {
		return events.CancelReply{}, errBadAccount
	}
	if req.Pos <= 0 {
		return events.CancelReply{}, ErrMessageNotFound
	}
	if err := t.caughtUp(ctx, uint64(req.Pos)>>events.PositionShift); err != nil {
		return events.CancelReply{}, err
	}
	m, err := t.st.Cancel(ctx, req.AccountID, req.Pos, time.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return events.CancelReply{}, ErrMessageNotFound
	case errors.Is(err, store.ErrNotCancellable):
		return events.CancelReply{}, ErrNotCancellable
	case err != nil:
		return events.CancelReply{}, err
	}
	t.m.Cancelled.Inc()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refundWait)
	defer cancel()
	t.refunds.Refund(rctx, []int64{m.Pos})
	return events.CancelReply{Message: tracked(&m)}, nil
}

// refundWait bounds giving a cancelled message's quota back before Cancel
// answers; past it the sweeper retries.
const refundWait = 5 * time.Second

func tracked(m *store.Tracked) events.TrackedSMS {
	return events.TrackedSMS{
		Pos: m.Pos, Phone: m.Phone, Text: m.Text, Status: m.Status, QueuedAt: m.AcceptedAt,
		ClaimedAt: m.ClaimedAt, FinishedAt: m.FinishedAt, Device: m.Device, Attempts: m.Attempts,
		SendAt: m.SendAt, ValidUntil: m.ValidUntil, High: m.High,
	}
}

// replySize bounds the bytes m takes in a JSON reply: every text byte may
// be escaped as \u00XX, and the fixed fields take under 300.
func replySize(m *store.Tracked) int {
	return 300 + len(m.Phone) + 6*len(m.Text) + 6*len(m.Device)
}
