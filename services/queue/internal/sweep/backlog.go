package sweep

import (
	"context"
	"log/slog"
	"time"

	"github.com/apitosms/apitosms/services/queue/internal/metrics"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// backlogRescan is how many rounds pass between scans from the first
// position (10 minutes at the default 15 s interval).
const backlogRescan = 40

// backlogBudget is the share of the time the gauges' counts may take: they
// scan the waiting backlog, so with millions waiting one refresh takes
// seconds, and refreshing every interval regardless cost the 10-million
// drain 1.76x the CPU per message (docs/benchmarks.md).
const backlogBudget = 0.02

// backlogWait is how long to wait after a refresh that took took: interval,
// or longer when the refresh took more than backlogBudget of it.
func backlogWait(interval, took time.Duration) time.Duration {
	return max(interval, time.Duration(float64(took)/backlogBudget))
}

// RunBacklog refreshes the backlog gauges now and then every interval, or
// less often when a refresh takes more than backlogBudget of the time
// between refreshes, until ctx ends. A failed count leaves the gauges as
// they were (logged).
func RunBacklog(ctx context.Context, st *store.Store, m *metrics.Backlog, interval, offlineAfter time.Duration, log *slog.Logger) {
	var floor int64
	for round := 0; ; round++ {
		began := time.Now()
		if round%backlogRescan == 0 {
			floor = 0 // now and then from the start: a message stored out of position order is counted again
		}
		b, err := st.Backlog(ctx, floor)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				log.Warn("count backlog failed", "err", err)
			}
		default:
			floor = b.Floor()
			m.Waiting.Set(float64(b.Waiting))
			m.Initiated.Set(float64(b.Initiated))
			age := 0.0
			if !b.OldestAt.IsZero() {
				age = max(time.Since(b.OldestAt).Seconds(), 0)
			}
			m.OldestWaiting.Set(age)
		}
		if n, err := st.PhonesOnline(ctx, time.Now().Add(-offlineAfter)); err != nil {
			if ctx.Err() == nil {
				log.Warn("count phones online failed", "err", err)
			}
		} else {
			m.PhonesOnline.Set(float64(n))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backlogWait(interval, time.Since(began))):
		}
	}
}
