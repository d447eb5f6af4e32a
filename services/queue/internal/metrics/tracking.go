package metrics

import "github.com/prometheus/client_golang/prometheus"

// Tracking are the metrics of message tracking (contract §9): cancels,
// quota refunds and retention.
type Tracking struct {
	Cancelled      prometheus.Counter // messages cancelled
	Refunded       prometheus.Counter // cancelled messages whose quota was given back
	RefundFailures prometheus.Counter // refund attempts that failed (retried by the sweeper)
	Removed        prometheus.Counter // final messages removed after the retention period
	SweepErrors    prometheus.Counter // sweeps that failed
}

// NewTracking registers the tracking metrics on reg.
func NewTracking(reg prometheus.Registerer) (*Tracking, error) {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "apitosms_queue_" + name, Help: help})
	}
	m := &Tracking{
		Cancelled:      c("cancelled_messages_total", "Messages cancelled by their merchant before being handed out."),
		Refunded:       c("refunded_messages_total", "Cancelled messages whose quota was given back to billing."),
		RefundFailures: c("refund_failures_total", "Attempts to give quota back that failed (the sweeper retries them)."),
		Removed:        c("retention_removed_messages_total", "Final messages removed after the retention period."),
		SweepErrors:    c("sweep_errors_total", "Retention or refund sweeps that failed."),
	}
	for _, x := range []prometheus.Collector{m.Cancelled, m.Refunded, m.RefundFailures, m.Removed, m.SweepErrors} {
		if err := reg.Register(x); err != nil {
			return nil, err
		}
	}
	return m, nil
}
