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

// RunBacklog refreshes the backlog gauges now and every interval until ctx
// ends. A failed count leaves the gauges as they were (logged).
func RunBacklog(ctx context.Context, st *store.Store, m *metrics.Backlog, interval, offlineAfter time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var floor int64
	for round := 0; ; round++ {
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
		case <-t.C:
		}
	}
}
