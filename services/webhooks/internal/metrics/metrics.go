// Package metrics holds the webhooks service's Prometheus metrics. No label
// names an account or an endpoint.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Outcomes of one POST.
const (
	OutcomeDelivered = "delivered" // 2xx
	OutcomeFailed    = "failed"    // any other answer, timeout, connection error: retried
	OutcomeGone      = "gone"      // 410: the endpoint is disabled
	OutcomeBlocked   = "blocked"   // the address dialled is not public (SSRF guard): retried
)

// Metrics of the webhooks service.
type Metrics struct {
	Deliveries *prometheus.CounterVec // POSTs by outcome
	Events     prometheus.Counter     // events delivered (a batch counts its events)
	Latency    prometheus.Histogram   // time of one POST
	Enqueued   prometheus.Counter     // (endpoint, event) pairs stored by fan-out
	Disabled   *prometheus.CounterVec // endpoints disabled, by reason
	Handoffs   prometheus.Counter     // POSTs started by the fan-out, without a claim
}

// Backlog reads the undelivered events at scrape time.
type Backlog func(ctx context.Context) (count int64, oldestMs int64, err error)

// New registers the metrics on reg (promauto: it panics if one is there
// already, a wiring mistake); backlog feeds the two backlog gauges.
func New(reg prometheus.Registerer, backlog Backlog) *Metrics {
	reg = prometheus.WrapRegistererWithPrefix("apitosms_webhooks_", reg)
	f := promauto.With(reg)
	m := &Metrics{
		Deliveries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "deliveries_total",
			Help: "Webhook POSTs by outcome (delivered, failed, gone, blocked).",
		}, []string{"outcome"}),
		Events: f.NewCounter(prometheus.CounterOpts{
			Name: "events_delivered_total",
			Help: "Events delivered (each event of a batch counts).",
		}),
		Latency: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "attempt_duration_seconds",
			Help:    "Time of one webhook POST, from connecting to the answer.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}),
		Enqueued: f.NewCounter(prometheus.CounterOpts{
			Name: "enqueued_total",
			Help: "Events stored for delivery, one per matching endpoint.",
		}),
		Disabled: f.NewCounterVec(prometheus.CounterOpts{
			Name: "endpoints_disabled_total",
			Help: "Endpoints disabled by the service, by reason (gone, failing).",
		}, []string{"reason"}),
		Handoffs: f.NewCounter(prometheus.CounterOpts{
			Name: "handoff_posts_total",
			Help: "POSTs of freshly stored events started by the fan-out itself (stored already claimed), without the dispatcher's claim.",
		}),
	}
	// One collector for the two gauges: one query answers both. The
	// prefixed registerer prefixes its descriptions' names too.
	reg.MustRegister(&backlogCollector{read: backlog})
	return m
}

var (
	backlogDesc = prometheus.NewDesc("backlog_events",
		"Events not yet delivered to enabled endpoints (one per endpoint), read from the database at scrape time.", nil, nil)
	oldestDesc = prometheus.NewDesc("oldest_undelivered_seconds",
		"Age of the oldest event not yet delivered to an enabled endpoint; 0 when none.", nil, nil)
)

type backlogCollector struct{ read Backlog }

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- backlogDesc; ch <- oldestDesc }

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, oldest, err := c.read(ctx)
	if err != nil {
		return // no sample rather than a wrong one
	}
	age := 0.0
	if n > 0 && oldest > 0 {
		age = max(time.Since(time.UnixMilli(oldest)).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
}
