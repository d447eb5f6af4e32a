package ingest

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/consumer"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/services/queue/internal/metrics"
	"github.com/apitosms/apitosms/services/queue/internal/notify"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// Reported applies ReportedBatch events so a message with a final status is
// never handed out. One Reported serves one consumer.
type Reported struct {
	st      *store.ClaimGroup
	wait    *consumer.CatchUp
	notify  *notify.Notifier
	m       *metrics.Metrics
	log     *slog.Logger
	reports []store.Report
	events  []events.ReportedBatch // one message's, reused
}

// NewReported returns the handler applying reports through st (on SQLite in
// the claims' shared transactions) and publishing their message events with
// n (none when n is nil). When a report names a message not stored yet, it
// waits on wait and applies again.
func NewReported(st *store.ClaimGroup, wait *consumer.CatchUp, n *notify.Notifier, m *metrics.Metrics, log *slog.Logger) *Reported {
	return &Reported{st: st, wait: wait, notify: n, m: m, log: log}
}

// Handle records the reported messages not final yet as final (status,
// device, time), in one transaction. A report can only name a message the status service had
// accepted, so when one names a message this service has not stored yet,
// waiting until ingestion has stored the accepted stream up to the newest
// reported position and applying again guarantees the row is there to
// update. Idempotent.
//
// Then it publishes message.sent / message.failed for the outcomes these
// reports recorded, and only then returns (the consumer acks): if the
// publish fails the batch is redelivered, finds the same outcomes recorded
// by the same reports and publishes the same event ids again. An event is
// therefore published at least once for every outcome recorded, and never
// for one that did not commit.
func (r *Reported) Handle(ctx context.Context, batch []jetstream.Msg) error {
	r.reports = r.reports[:0]
	for _, msg := range batch {
		// One event, or the events of status requests published together.
		var err error
		if r.events, err = events.DecodeReported(r.events[:0], msg.Data()); err != nil {
			return fmt.Errorf("decode reported batch: %w", err)
		}
		for _, ev := range r.events {
			for _, it := range ev.Items {
				r.reports = append(r.reports, store.Report{AccountID: ev.AccountID, Pos: it.Pos, Status: it.Status,
					Device: ev.Device, At: ev.ReportedAt})
			}
		}
	}
	if len(r.reports) == 0 {
		return nil
	}
	// Only the messages of accounts with an endpoint for their events are
	// read in full (the events' data); the others' reports read four
	// integers a row.
	tell := r.notify.Tells()
	rec, err := r.st.RecordReports(ctx, r.reports, tell)
	if err != nil {
		return err
	}
	n, missing, final := rec.Changed, rec.Missing, rec.Final
	var again store.Recorded
	if missing > 0 {
		newest := int64(0)
		for _, rep := range r.reports {
			newest = max(newest, rep.Pos)
		}
		if _, err := r.wait.WaitFor(ctx, uint64(newest)>>events.PositionShift); err != nil {
			return err
		}
		again, err = r.st.RecordReports(ctx, r.reports, tell)
		if err != nil {
			return err
		}
		n += again.Changed
		final = again.Final // those of the first pass again, and the rest
		if again.Missing > 0 {
			r.log.Warn("reports name messages never accepted; ignored", "count", again.Missing)
		}
	}
	r.m.Reported.Add(float64(n))
	r.m.Sent.Add(float64(rec.Sent + again.Sent))
	r.m.Failed.Add(float64(rec.Failed + again.Failed))
	r.notify.Untold(rec.Untold + again.Untold)
	if _, err := r.notify.Messages(ctx, final); err != nil {
		return fmt.Errorf("publish message events: %w", err)
	}
	return nil
}
