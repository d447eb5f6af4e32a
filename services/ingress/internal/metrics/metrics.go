// Package metrics holds the ingress service's own Prometheus metrics.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the ingress service. No label carries a token, an account or
// a phone.
type Metrics struct {
	Accepted     prometheus.Counter // SMS accepted (200, stored in the accepted stream)
	RateLimited  prometheus.Counter // requests refused with 429
	Replays      prometheus.Counter // queue requests answered from a stored Idempotency-Key response
	QuotaCut     prometheus.Counter // valid SMS refused for the monthly limit
	QuotaRefused prometheus.Counter // 402 limit_exceeded answers
	Claimed      prometheus.Counter // SMS returned by get_messages
	Reports      prometheus.Counter // entries received in status requests

	PhonesDropped      prometheus.Counter // phone sightings dropped: the table was full
	PhoneFlushes       prometheus.Counter // batches of phone sightings sent to the queue
	PhoneFlushFailures prometheus.Counter // batches the queue did not take
}

// New registers the metrics on reg (promauto: it panics if one is there already, a wiring mistake).
func New(reg prometheus.Registerer) *Metrics {
	f := promauto.With(prometheus.WrapRegistererWithPrefix("apitosms_ingress_", reg))
	return &Metrics{
		Accepted:     f.NewCounter(prometheus.CounterOpts{Name: "accepted_messages_total", Help: "SMS accepted (answered 200 and stored in the accepted stream)."}),
		RateLimited:  f.NewCounter(prometheus.CounterOpts{Name: "rate_limited_total", Help: "Requests refused with 429."}),
		Replays:      f.NewCounter(prometheus.CounterOpts{Name: "idempotent_replays_total", Help: "Queue requests answered from a stored Idempotency-Key response."}),
		QuotaCut:     f.NewCounter(prometheus.CounterOpts{Name: "quota_refused_messages_total", Help: "Valid SMS refused because the monthly limit was reached."}),
		QuotaRefused: f.NewCounter(prometheus.CounterOpts{Name: "quota_refused_requests_total", Help: "Queue requests refused with 402 limit_exceeded (nothing left of the monthly limit)."}),
		Claimed:      f.NewCounter(prometheus.CounterOpts{Name: "handed_out_messages_total", Help: "SMS returned by get_messages."}),
		Reports:      f.NewCounter(prometheus.CounterOpts{Name: "status_entries_total", Help: "Entries received in status requests."}),

		PhonesDropped:      f.NewCounter(prometheus.CounterOpts{Name: "phones_dropped_total", Help: "Phone sightings dropped because the table of phones seen between two flushes was full."}),
		PhoneFlushes:       f.NewCounter(prometheus.CounterOpts{Name: "phone_flushes_total", Help: "Batches of phone sightings sent to the queue service."}),
		PhoneFlushFailures: f.NewCounter(prometheus.CounterOpts{Name: "phone_flush_failures_total", Help: "Batches of phone sightings the queue service did not take (sent again with the next)."}),
	}
}
