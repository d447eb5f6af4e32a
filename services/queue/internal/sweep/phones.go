package sweep

import (
	"context"
	"log/slog"
	"time"

	"github.com/apitosms/apitosms/services/queue/internal/notify"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// PhoneCheckInterval is how often phones are checked for phone.offline and
// phone.online: a quarter of the offline threshold, between 1 s and 30 s.
func PhoneCheckInterval(offlineAfter time.Duration) time.Duration {
	return min(max(offlineAfter/4, time.Second), 30*time.Second)
}

// RunPhones checks phones every interval until ctx ends: phones silent for
// offlineAfter while messages wait for their account go offline, phones seen
// again go online (store.CheckPhones: one replica flips each), and the
// events due are published and then marked published. An event not
// published (broker down, process killed) stays due for the next round.
func RunPhones(ctx context.Context, st *store.Store, n *notify.Notifier, offlineAfter, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due, err := st.CheckPhones(ctx, time.Now().Add(-offlineAfter))
		if err == nil && len(due) > 0 {
			if err = n.Phones(ctx, due); err == nil {
				err = st.PhoneEventsPublished(ctx, due)
			}
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("phone check failed; retried", "err", err)
		}
	}
}
