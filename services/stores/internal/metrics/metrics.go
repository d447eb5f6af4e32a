// Package metrics holds the stores service's Prometheus metrics. Labels are
// bounded (platform, outcome, decision): never store ids, tokens or phones.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Metrics of the stores service.
type Metrics struct {
	Received  *prometheus.CounterVec // by platform and outcome
	Decisions *prometheus.CounterVec // by decision
	Queued    prometheus.Counter
}

// New registers the metrics on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apitosms_stores_hooks_received_total",
			Help: "Shop deliveries received, by platform and outcome (stored, ping, bad_signature, unknown_store, error).",
		}, []string{"platform", "outcome"}),
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apitosms_stores_decisions_total",
			Help: "Decisions taken on received deliveries (queued, skipped, duplicate, rejected).",
		}, []string{"decision"}),
		Queued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apitosms_stores_queued_messages_total",
			Help: "SMS published to the accepted stream for shop events.",
		}),
	}
	for _, c := range []prometheus.Collector{m.Received, m.Decisions, m.Queued} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
