package consume

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/consumer"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/services/queue/internal/metrics"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// Reported applies ReportedBatch events so a message with a final status is
// never handed out. One Reported serves one consumer.
type Reported struct {
	st      *store.Store
	wait    *consumer.CatchUp
	m       *metrics.Metrics
	log     *slog.Logger
	reports []store.Report
}

// NewReported returns the handler applying reports to st. When a report
// names a message not stored yet, it waits on wait and applies again.
func NewReported(st *store.Store, wait *consumer.CatchUp, m *metrics.Metrics, log *slog.Logger) *Reported {
	return &Reported{st: st, wait: wait, m: m, log: log}
}

// Handle records the reported messages not final yet as final (status,
// device, time), in one transaction. A report can only name a message the status service had
// accepted, so when one names a message this service has not stored yet,
// waiting until ingestion has stored the accepted stream up to the newest
// reported position and applying again guarantees the row is there to
// update. Idempotent.
func (r *Reported) Handle(ctx context.Context, batch []jetstream.Msg) error {
	r.reports = r.reports[:0]
	for _, msg := range batch {
		var ev events.ReportedBatch
		if err := events.Unmarshal(msg.Data(), &ev); err != nil {
			return fmt.Errorf("decode reported batch: %w", err)
		}
		for _, it := range ev.Items {
			r.reports = append(r.reports, store.Report{AccountID: ev.AccountID, Pos: it.Pos, Status: it.Status,
				Device: ev.Device, At: ev.ReportedAt})
		}
	}
	if len(r.reports) == 0 {
		return nil
	}
	n, missing, err := r.st.ApplyReports(ctx, r.reports)
	if err != nil {
		return err
	}
	if missing > 0 {
		newest := int64(0)
		for _, rep := range r.reports {
			newest = max(newest, rep.Pos)
		}
		if _, err := r.wait.WaitFor(ctx, uint64(newest)>>events.PositionShift); err != nil {
			return err
		}
		more, stillMissing, err := r.st.ApplyReports(ctx, r.reports)
		if err != nil {
			return err
		}
		n += more
		if stillMissing > 0 {
			r.log.Warn("reports name messages never accepted; ignored", "count", stillMissing)
		}
	}
	r.m.Reported.Add(float64(n))
	return nil
}
