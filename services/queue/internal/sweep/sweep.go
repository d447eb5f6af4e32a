// Package sweep does the queue's background upkeep: claims nobody
// confirmed go back to new (claims.go), and for message tracking
// (contract §9) it gives the quota of cancelled messages back to billing
// and removes final messages once the retention period is over. Every
// replica runs it; the store's operations make concurrent sweeps safe.
package sweep

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/services/queue/internal/metrics"
	"github.com/apitosms/apitosms/services/queue/internal/notify"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// refundBatch is the most pending refunds taken per sweep round.
const refundBatch = 500

// Sweeper gives refunds back and applies retention.
type Sweeper struct {
	st        *store.Store
	nc        *nats.Conn
	names     events.Names
	notify    *notify.Notifier
	retention time.Duration
	interval  time.Duration
	m         *metrics.Tracking
	log       *slog.Logger
	now       func() time.Time
}

// New returns a sweeper removing final messages retention after they became
// final, every interval.
func New(st *store.Store, nc *nats.Conn, names events.Names, n *notify.Notifier, retention, interval time.Duration, m *metrics.Tracking, log *slog.Logger) *Sweeper {
	return &Sweeper{st: st, nc: nc, names: names, notify: n, retention: retention, interval: interval, m: m, log: log, now: time.Now}
}

// Run sweeps every interval until ctx ends. Failures are logged, counted and
// retried at the next round.
func (s *Sweeper) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.Once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once runs one round: pending refunds, then retention.
func (s *Sweeper) Once(ctx context.Context) {
	for {
		pending, err := s.st.PendingRefunds(ctx, refundBatch)
		if err != nil {
			s.fail(ctx, "pending refunds", err)
			break
		}
		if len(pending) == 0 {
			break
		}
		if s.Refund(ctx, pending) == 0 || len(pending) < refundBatch {
			break
		}
	}
	removed, err := s.st.SweepRetention(ctx, s.now().Add(-s.retention))
	s.m.Removed.Add(float64(removed))
	if err != nil {
		s.fail(ctx, "retention sweep", err)
	} else if removed > 0 {
		s.log.Info("retention removed final messages", "count", removed)
	}
}

// Refund publishes the events (message.cancelled, message.expired) of the
// messages at positions whose refund is still pending, then gives back
// their quota, one billing release per account and month, and
// returns how many it gave back. Each pending refund is taken by one caller
// only (replicas and concurrent cancels never both give it back). A release
// billing refused or did not answer is marked pending again for the next
// sweep. The pending refund is the outbox of the event too: it is set in the
// transaction that ended the message and taken only after the event was
// published, so a process dying in between leaves it for the next sweep
// (which publishes the same event id again). Two windows of one round trip remain: a release applied whose
// answer was lost is given back again; a process dying between taking a
// refund and sending the release loses it.
func (s *Sweeper) Refund(ctx context.Context, positions []int64) int {
	ended, err := s.st.PendingRefundMessages(ctx, positions)
	if err != nil {
		s.fail(ctx, "read pending refunds", err)
		return 0
	}
	if _, err := s.notify.Messages(ctx, ended); err != nil {
		s.fail(ctx, "publish message events", err)
		return 0
	}
	refunds, err := s.st.TakeRefunds(ctx, positions)
	if err != nil {
		s.fail(ctx, "take refunds", err)
		return 0
	}
	given := 0
	for _, r := range refunds {
		_, err := rpc.Call[events.ReleaseRequest, events.ReleaseReply](ctx, s.nc, s.names.BillingRelease(),
			events.ReleaseRequest{AccountID: r.AccountID, Count: len(r.Positions), Month: r.Month})
		if err != nil {
			s.m.RefundFailures.Inc()
			s.log.Warn("give back quota of cancelled messages failed; retried later", "count", len(r.Positions), "err", err)
			if err := s.st.ReturnRefunds(context.WithoutCancel(ctx), r.Positions); err != nil {
				s.log.Error("refunds lost: cannot mark them pending again", "count", len(r.Positions), "err", err)
			}
			continue
		}
		given += len(r.Positions)
	}
	s.m.Refunded.Add(float64(given))
	return given
}

func (s *Sweeper) fail(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	s.m.SweepErrors.Inc()
	s.log.Warn(what+" failed", "err", err)
}
