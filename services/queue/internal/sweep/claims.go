package sweep

// This file returns the messages of claims nobody confirmed to new: the
// ingress that asked for them died, or gave up, before its answer reached a
// phone.

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

// ClaimsOnce sweeps until no expired claim is left.
func ClaimsOnce(ctx context.Context, st *store.Store, m *metrics.Metrics, log *slog.Logger) {
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
			log.Info("expired claims swept: their messages are handed out again",
				"claims", sw.Claims, "messages", sw.Requeued)
		}
		if sw.Claims < claimBatch {
			return
		}
	}
}
