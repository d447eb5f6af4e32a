package rpcapi

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of billing's reservations.
type Metrics struct {
	reservations    *prometheus.CounterVec
	reserved        prometheus.Counter
	released        prometheus.Counter
	groupCommitSize prometheus.Histogram

	quotaEvents        *prometheus.CounterVec
	quotaEventFailures prometheus.Counter
}

// Reservation outcomes, the values of the outcome label.
const (
	OutcomeGranted        = "granted"
	OutcomePartial        = "partial"
	OutcomeExhausted      = "exhausted"
	OutcomeNoSubscription = "no_subscription"
)

// NewMetrics registers billing's metrics on reg (promauto: it panics if one is there already, a wiring mistake).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(prometheus.WrapRegistererWithPrefix("apitosms_billing_", reg))
	m := &Metrics{
		reservations: f.NewCounterVec(prometheus.CounterOpts{
			Name: "reservations_total",
			Help: "Reservations answered, by outcome (granted, partial, exhausted, no_subscription).",
		}, []string{"outcome"}),
		reserved: f.NewCounter(prometheus.CounterOpts{
			Name: "reserved_messages_total",
			Help: "Messages granted from monthly quotas.",
		}),
		released: f.NewCounter(prometheus.CounterOpts{
			Name: "released_messages_total",
			Help: "Messages given back to monthly quotas after a failed publish.",
		}),
		groupCommitSize: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "group_commit_size",
			Help:    "Reservations applied per database transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
		quotaEvents: f.NewCounterVec(prometheus.CounterOpts{
			Name: "quota_events_total",
			Help: "Quota events published (quota.warning, quota.exhausted), relays included.",
		}, []string{"type"}),
		quotaEventFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "quota_event_failures_total",
			Help: "Quota event publishes that failed (left due for the relay).",
		}),
	}
	for _, o := range []string{OutcomeGranted, OutcomePartial, OutcomeExhausted, OutcomeNoSubscription} {
		m.reservations.WithLabelValues(o)
	}
	return m
}

// ObserveBatch records the size of one group commit.
func (m *Metrics) ObserveBatch(size int) { m.groupCommitSize.Observe(float64(size)) }
