// Package metrics holds the stores service's Prometheus metrics. Labels are
// bounded (platform, outcome, decision): never store ids, tokens or phones.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the stores service.
type Metrics struct {
	Received  *prometheus.CounterVec // by platform and outcome
	Decisions *prometheus.CounterVec // by decision
	Queued    prometheus.Counter
}

// New registers the metrics on reg (promauto: it panics if one is there already, a wiring mistake).
func New(reg prometheus.Registerer) *Metrics {
	f := promauto.With(prometheus.WrapRegistererWithPrefix("apitosms_stores_", reg))
	m := &Metrics{
		Received: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hooks_received_total",
			Help: "Shop deliveries received, by platform and outcome (stored, ping, bad_signature, unknown_store, error).",
		}, []string{"platform", "outcome"}),
		Decisions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "decisions_total",
			Help: "Decisions taken on received deliveries (queued, skipped, duplicate, rejected).",
		}, []string{"decision"}),
		Queued: f.NewCounter(prometheus.CounterOpts{
			Name: "queued_messages_total",
			Help: "SMS published to the accepted stream for shop events.",
		}),
	}
	return m
}
