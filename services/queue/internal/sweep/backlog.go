package sweep

import (
	"context"
	"log/slog"
	"time"

	"github.com/apitosms/apitosms/services/queue/internal/metrics"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// backlogBudget is the share of the time the gauges' refresh may take. It
// reads kept counts and seeks once or twice per account with messages
// waiting (store.Backlog), so it takes milliseconds; the budget is a
// safety net for many such accounts: when counting scanned the backlog,
// refreshing every interval regardless cost the 10-million drain 1.76x the
// CPU per message (docs/benchmarks.md).
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
	for {
		began := time.Now()
		b, err := st.Backlog(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				log.Warn("count backlog failed", "err", err)
			}
		default:
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
