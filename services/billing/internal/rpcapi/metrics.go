package rpcapi

import "github.com/prometheus/client_golang/prometheus"

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

// NewMetrics registers billing's metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reservations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apitosms_billing_reservations_total",
			Help: "Reservations answered, by outcome (granted, partial, exhausted, no_subscription).",
		}, []string{"outcome"}),
		reserved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apitosms_billing_reserved_messages_total",
			Help: "Messages granted from monthly quotas.",
		}),
		released: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apitosms_billing_released_messages_total",
			Help: "Messages given back to monthly quotas after a failed publish.",
		}),
		groupCommitSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "apitosms_billing_group_commit_size",
			Help:    "Reservations applied per database transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
		quotaEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apitosms_billing_quota_events_total",
			Help: "Quota events published (quota.warning, quota.exhausted), relays included.",
		}, []string{"type"}),
		quotaEventFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apitosms_billing_quota_event_failures_total",
			Help: "Quota event publishes that failed (left due for the relay).",
		}),
	}
	for _, c := range []prometheus.Collector{m.reservations, m.reserved, m.released, m.groupCommitSize, m.quotaEvents, m.quotaEventFailures} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, o := range []string{OutcomeGranted, OutcomePartial, OutcomeExhausted, OutcomeNoSubscription} {
		m.reservations.WithLabelValues(o)
	}
	return m, nil
}

// ObserveBatch records the size of one group commit.
func (m *Metrics) ObserveBatch(size int) { m.groupCommitSize.Observe(float64(size)) }
