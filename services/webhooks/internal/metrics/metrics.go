// Package metrics holds the webhooks service's Prometheus metrics. No label
// names an account or an endpoint.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
}

// Backlog reads the undelivered events at scrape time.
type Backlog func(ctx context.Context) (count int64, oldestMs int64, err error)

// New registers the metrics on reg; backlog feeds the two backlog gauges.
func New(reg prometheus.Registerer, backlog Backlog) (*Metrics, error) {
	m := &Metrics{
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apitosms_webhooks_deliveries_total",
			Help: "Webhook POSTs by outcome (delivered, failed, gone, blocked).",
		}, []string{"outcome"}),
		Events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apitosms_webhooks_events_delivered_total",
			Help: "Events delivered (each event of a batch counts).",
		}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "apitosms_webhooks_attempt_duration_seconds",
			Help:    "Time of one webhook POST, from connecting to the answer.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}),
		Enqueued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apitosms_webhooks_enqueued_total",
			Help: "Events stored for delivery, one per matching endpoint.",
		}),
		Disabled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apitosms_webhooks_endpoints_disabled_total",
			Help: "Endpoints disabled by the service, by reason (gone, failing).",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.Deliveries, m.Events, m.Latency, m.Enqueued, m.Disabled, &backlogCollector{read: backlog}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

var (
	backlogDesc = prometheus.NewDesc("apitosms_webhooks_backlog_events",
		"Events not yet delivered to enabled endpoints (one per endpoint), read from the database at scrape time.", nil, nil)
	oldestDesc = prometheus.NewDesc("apitosms_webhooks_oldest_undelivered_seconds",
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
