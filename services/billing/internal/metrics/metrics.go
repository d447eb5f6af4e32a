// Package metrics holds the billing service's own Prometheus metrics.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the billing service.
type Metrics struct {
	Reservations    *prometheus.CounterVec // apitosms_billing_reservations_total{outcome}
	Reserved        prometheus.Counter     // apitosms_billing_reserved_messages_total
	Released        prometheus.Counter     // apitosms_billing_released_messages_total
	GroupCommitSize prometheus.Histogram   // apitosms_billing_group_commit_size

	QuotaEvents        *prometheus.CounterVec // apitosms_billing_quota_events_total{type}
	QuotaEventFailures prometheus.Counter     // apitosms_billing_quota_event_failures_total

	// Changed calls some present ingress replica did not acknowledge in
	// time (apitosms_billing_account_changes_unacknowledged_total).
	ChangesUnacknowledged prometheus.Counter
}

// Reservation outcomes, the values of the outcome label.
const (
	OutcomeGranted        = "granted"
	OutcomePartial        = "partial"
	OutcomeExhausted      = "exhausted"
	OutcomeNoSubscription = "no_subscription"
)

// New registers billing's metrics on reg (promauto: it panics if one is there already, a wiring mistake).
func New(reg prometheus.Registerer) *Metrics {
	f := promauto.With(prometheus.WrapRegistererWithPrefix("apitosms_billing_", reg))
	m := &Metrics{
		Reservations: f.NewCounterVec(prometheus.CounterOpts{
			Name: "reservations_total",
			Help: "Reservations answered, by outcome (granted, partial, exhausted, no_subscription).",
		}, []string{"outcome"}),
		Reserved: f.NewCounter(prometheus.CounterOpts{
			Name: "reserved_messages_total",
			Help: "Messages granted from monthly quotas.",
		}),
		Released: f.NewCounter(prometheus.CounterOpts{
			Name: "released_messages_total",
			Help: "Messages given back to monthly quotas after a failed publish.",
		}),
		GroupCommitSize: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "group_commit_size",
			Help:    "Reservations applied per database transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
		QuotaEvents: f.NewCounterVec(prometheus.CounterOpts{
			Name: "quota_events_total",
			Help: "Quota events published (quota.warning, quota.exhausted), relays included.",
		}, []string{"type"}),
		QuotaEventFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "quota_event_failures_total",
			Help: "Quota event publishes that failed (left due for the relay).",
		}),
		ChangesUnacknowledged: f.NewCounter(prometheus.CounterOpts{
			Name: "account_changes_unacknowledged_total",
			Help: "Account changes (token rotated, subscription put or ended) that some ingress replica did not acknowledge within the bound; its cache may have served the old answer up to its TTL.",
		}),
	}
	for _, o := range []string{OutcomeGranted, OutcomePartial, OutcomeExhausted, OutcomeNoSubscription} {
		m.Reservations.WithLabelValues(o)
	}
	return m
}

// ObserveBatch records the size of one group commit.
func (m *Metrics) ObserveBatch(size int) { m.GroupCommitSize.Observe(float64(size)) }
