package rpcapi

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/services/billing/internal/domain"
	"github.com/apitosms/apitosms/services/billing/internal/metrics"
	"github.com/apitosms/apitosms/services/billing/internal/store"
)

// QuotaEvents publishes quota.warning and quota.exhausted (contract §10).
// A reservation that crosses a threshold marks the event fired and due on
// the account's usage row in its own transaction (an outbox); the event is
// published right after the commit and then marked published. If the
// publish fails or the process dies in between, Relay publishes it later.
// The event id, quota.<warning|exhausted>.<account>.<month>, names the fact,
// so publishing it twice (a relay on two replicas) is harmless.
type QuotaEvents struct {
	js    jetstream.JetStream
	names events.Names
	st    *store.Store
	m     *metrics.Metrics
	log   *slog.Logger
}

// NewQuotaEvents returns the publisher of quota events (js nil: none are
// published; they stay due).
func NewQuotaEvents(js jetstream.JetStream, names events.Names, st *store.Store, m *metrics.Metrics, log *slog.Logger) *QuotaEvents {
	return &QuotaEvents{js: js, names: names, st: st, m: m, log: log}
}

// QuotaData is the data of a quota event.
type QuotaData struct {
	Used  int64  `json:"used"`
	Limit int64  `json:"limit"`
	Month string `json:"month"`
}

// quotaTypes names the events of the quota bits.
var quotaTypes = map[int]string{domain.QuotaWarning: events.TypeQuotaWarning, domain.QuotaExhausted: events.TypeQuotaExhausted}

// QuotaEventID is the id of a quota event: the same for every publish of it.
func QuotaEventID(typ string, account int64, month string) string {
	return fmt.Sprintf("%s.%d.%s", typ, account, month)
}

// Publish publishes evs and marks them published. On failure they stay due.
func (q *QuotaEvents) Publish(ctx context.Context, evs []store.QuotaEvent) error {
	if q == nil || q.js == nil || len(evs) == 0 {
		return nil
	}
	list := make([]events.Notification, 0, len(evs))
	for _, ev := range evs {
		typ := quotaTypes[ev.Event]
		data, err := events.Marshal(QuotaData{Used: ev.Used, Limit: ev.Limit, Month: ev.Month})
		if err != nil {
			return err
		}
		list = append(list, events.Notification{ID: QuotaEventID(typ, ev.AccountID, ev.Month), AccountID: ev.AccountID, Type: typ, Data: data})
	}
	// One stream message; its id names exactly these events.
	batchID := "quota"
	for _, n := range list {
		batchID += "|" + n.ID
	}
	if err := events.PublishNotifications(ctx, q.js, q.names, batchID, list); err != nil {
		q.m.QuotaEventFailures.Inc()
		return err
	}
	for _, n := range list {
		q.m.QuotaEvents.WithLabelValues(n.Type).Inc()
	}
	return q.st.PublishedQuotaEvents(ctx, evs)
}

// fromGrants lists the events the grants of one batch fired.
func fromGrants(rs []domain.Reservation, grants []domain.Grant) []store.QuotaEvent {
	var out []store.QuotaEvent
	for i, g := range grants {
		for _, bit := range []int{domain.QuotaWarning, domain.QuotaExhausted} {
			if g.Crossed&bit != 0 {
				out = append(out, store.QuotaEvent{AccountID: rs[i].AccountID, Month: g.Month, Event: bit, Used: g.Used, Limit: g.Limit})
			}
		}
	}
	return out
}

// QuotaRelayInterval is how often Relay looks for quota events left due.
const QuotaRelayInterval = 30 * time.Second

// Relay publishes the quota events left due every interval until ctx ends.
func (q *QuotaEvents) Relay(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due, err := q.st.DueQuotaEvents(ctx, 1000)
		if err == nil {
			err = q.Publish(ctx, due)
		}
		if err != nil && ctx.Err() == nil {
			q.log.Warn("publish due quota events failed; retried", "err", err)
		}
	}
}
