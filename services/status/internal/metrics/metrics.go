// Package metrics holds the status service's own Prometheus metrics.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Report outcomes, the values of the outcome label.
const (
	OutcomeUpdated  = "updated"
	OutcomeUnknown  = "unknown"
	OutcomeInvalid  = "invalid"
	OutcomeConflict = "conflict"
)

// Metrics of the status service.
type Metrics struct {
	Reports         *prometheus.CounterVec // apitosms_status_reports_total{outcome}
	Ingested        prometheus.Counter     // apitosms_status_ingested_messages_total
	ApplyWait       prometheus.Histogram   // apitosms_status_apply_wait_seconds
	PublishFailures prometheus.Counter     // apitosms_status_reported_publish_failures_total
	OutboxRelayed   prometheus.Counter     // apitosms_status_outbox_relayed_total
	// ReportedMessages counts the fast path's stream messages, each holding
	// the events of one or more requests.
	ReportedMessages prometheus.Counter // apitosms_status_reported_messages_total
}

// New registers the metrics on reg (promauto: it panics if one is there already, a wiring mistake).
func New(reg prometheus.Registerer) *Metrics {
	f := promauto.With(prometheus.WrapRegistererWithPrefix("apitosms_status_", reg))
	m := &Metrics{
		Reports: f.NewCounterVec(prometheus.CounterOpts{
			Name: "reports_total",
			Help: "Delivery report entries applied, by outcome (updated, unknown, invalid, conflict).",
		}, []string{"outcome"}),
		Ingested: f.NewCounter(prometheus.CounterOpts{
			Name: "ingested_messages_total",
			Help: "Accepted SMS recorded from the accepted stream (redeliveries included).",
		}),
		ApplyWait: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "apply_wait_seconds",
			Help:    "Time a status request waited for the ingest consumer to catch up before answering unknown hashes.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 10),
		}),
		PublishFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "reported_publish_failures_total",
			Help: "ReportedBatch publishes that failed (the event stays in the outbox and is relayed later).",
		}),
		OutboxRelayed: f.NewCounter(prometheus.CounterOpts{
			Name: "outbox_relayed_total",
			Help: "ReportedBatch events published by the outbox relay: left by a failed publish or a stopped process.",
		}),
		ReportedMessages: f.NewCounter(prometheus.CounterOpts{
			Name: "reported_messages_total",
			Help: "Reported-stream messages published by status requests, each holding the ReportedBatch events of the requests committed together.",
		}),
	}
	for _, o := range []string{OutcomeUpdated, OutcomeUnknown, OutcomeInvalid, OutcomeConflict} {
		m.Reports.WithLabelValues(o)
	}
	return m
}
