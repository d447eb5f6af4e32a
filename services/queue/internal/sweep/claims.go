package sweep

// This file returns the messages of claims nobody confirmed to new: the
// ingress that asked for them died, or gave up, before its answer reached a
// phone. It also settles leased claims whose lease ran out (requeue or
// expire, contract §12), makes scheduled messages due when their sendAt
// comes, and expires waiting messages whose lifetime ended (their quota is
// given back by the refund sweep, sweep.go).

import (
	"context"
	"log/slog"
	"time"

	"github.com/apitosms/apitosms/services/queue/internal/metrics"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// claimBatch is the most claims closed in one transaction.
const claimBatch = 100

// RunClaims sweeps expired claims at once and then every interval until ctx ends.
// Every queue replica runs it; store.Sweep keeps them apart. A failed sweep
// is logged and tried again at the next tick.
func RunClaims(ctx context.Context, st *store.Store, interval time.Duration, m *metrics.Metrics, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ClaimsOnce(ctx, st, m, log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// extrasBatch is the most scheduled or lifetime-ended messages changed in
// one statement.
const extrasBatch = 1000

// ClaimsOnce sweeps until no expired claim is left, then promotes the due
// scheduled messages and expires the waiting ones whose lifetime ended.
func ClaimsOnce(ctx context.Context, st *store.Store, m *metrics.Metrics, log *slog.Logger) {
	claimsOnce(ctx, st, m, log)
	for ctx.Err() == nil {
		n, err := st.Promote(ctx, time.Now(), extrasBatch)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("promoting scheduled messages failed", "err", err)
			}
			break
		}
		m.Promoted.Add(float64(n))
		if n < extrasBatch {
			break
		}
	}
	for ctx.Err() == nil {
		// Expiring marks each message's refund pending in the same
		// transaction: the refund sweep (Sweeper.Refund) publishes its
		// message.expired event, then gives its quota back.
		dead, err := st.ExpireDue(ctx, time.Now(), extrasBatch)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("expiring messages past their lifetime failed", "err", err)
			}
			break
		}
		m.MsgExpired.Add(float64(len(dead)))
		if len(dead) > 0 {
			log.Info("messages past their lifetime expired", "messages", len(dead))
		}
		if len(dead) < extrasBatch {
			break
		}
	}
}

// claimsOnce sweeps until no expired claim is left.
func claimsOnce(ctx context.Context, st *store.Store, m *metrics.Metrics, log *slog.Logger) {
	for ctx.Err() == nil {
		sw, err := st.Sweep(ctx, time.Now(), claimBatch)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("sweeping expired claims failed", "err", err)
			}
			return
		}
		if sw.Claims > 0 {
			m.Expired.Add(float64(sw.Claims))
			m.Requeued.Add(float64(sw.Requeued))
			m.MsgExpired.Add(float64(len(sw.Expired)))
			log.Info("expired claims swept: their messages are handed out again or expired",
				"claims", sw.Claims, "requeued", sw.Requeued, "expired", len(sw.Expired))
		}
		if sw.Claims < claimBatch {
			return
		}
	}
}
