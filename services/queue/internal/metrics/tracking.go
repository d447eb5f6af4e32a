package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Tracking are the metrics of message tracking (contract §9): cancels,
// quota refunds and retention.
type Tracking struct {
	Cancelled      prometheus.Counter // messages cancelled
	Refunded       prometheus.Counter // cancelled messages whose quota was given back
	RefundFailures prometheus.Counter // refund attempts that failed (retried by the sweeper)
	Removed        prometheus.Counter // final messages removed after the retention period
	SweepErrors    prometheus.Counter // sweeps that failed
	// Message and phone events published to the notify stream, and those
	// not published because no enabled endpoint of the account subscribes
	// to their type.
	EventsPublished prometheus.Counter
	EventsSkipped   prometheus.Counter
	// SubscriptionsKnown is 1 while the accounts' webhook subscriptions are
	// known (0: every event is published).
	SubscriptionsKnown prometheus.Gauge
}

// NewTracking registers the tracking metrics on reg (promauto: it panics if one is there already, a wiring mistake).
func NewTracking(reg prometheus.Registerer) *Tracking {
	f := promauto.With(prometheus.WrapRegistererWithPrefix("apitosms_queue_", reg))
	c := func(name, help string) prometheus.Counter {
		return f.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &Tracking{
		Cancelled:       c("cancelled_messages_total", "Messages cancelled by their merchant before being handed out."),
		Refunded:        c("refunded_messages_total", "Cancelled messages whose quota was given back to billing."),
		RefundFailures:  c("refund_failures_total", "Attempts to give quota back that failed (the sweeper retries them)."),
		Removed:         c("retention_removed_messages_total", "Final messages removed after the retention period."),
		SweepErrors:     c("sweep_errors_total", "Retention or refund sweeps that failed."),
		EventsPublished: c("events_published_total", "Message and phone events published for webhooks."),
		EventsSkipped:   c("events_skipped_total", "Message and phone events not published: no enabled endpoint of the account subscribes to their type."),
		SubscriptionsKnown: f.NewGauge(prometheus.GaugeOpts{Name: "webhook_subscriptions_known",
			Help: "1 while the accounts' webhook subscriptions are known; 0 while every event is published (webhooks service not answering)."}),
	}
	return m
}
