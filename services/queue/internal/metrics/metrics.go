// Package metrics declares the queue service's own Prometheus metrics.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Metrics of the queue service. No label carries an account, phone or hash.
type Metrics struct {
	Ingested   prometheus.Counter   // messages newly stored
	Claimed    prometheus.Counter   // messages handed out
	ClaimWait  prometheus.Histogram // read-your-writes wait before a claim
	ClaimGroup prometheus.Histogram // claims sharing one transaction (group commit)
	Reported   prometheus.Counter   // messages set final by delivery reports
	Sent       prometheus.Counter   // outcomes recorded: sent
	Failed     prometheus.Counter   // outcomes recorded: failed
	Acked      prometheus.Counter   // open claims closed by their ingress's ack
	Expired    prometheus.Counter   // open claims swept after their confirm timeout
	Requeued   prometheus.Counter   // messages of swept claims set back to new
	Promoted   prometheus.Counter   // scheduled messages that became due (§12)
	MsgExpired prometheus.Counter   // messages expired: lifetime or lease (§12)
}

// New registers the metrics on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	reports := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apitosms_queue_outcomes_total",
		Help: "Messages that reached a final status reported by a phone, by status (sent, failed); a repeated report is not counted.",
	}, []string{"status"})
	m := &Metrics{
		Ingested: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apitosms_queue_ingested_messages_total",
			Help: "Accepted messages stored in the queue (redeliveries not counted).",
		}),
		Claimed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apitosms_queue_claimed_messages_total",
			Help: "Messages handed out to phones.",
		}),
		ClaimWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "apitosms_queue_claim_wait_seconds",
			Help:    "Time a claim waited for ingestion to catch up with the accepted stream (read-your-writes).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 3, 11),
		}),
		ClaimGroup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "apitosms_queue_claim_group_size",
			Help:    "Claims committed in one shared transaction (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32},
		}),
		Reported: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apitosms_queue_reported_messages_total",
			Help: "Queued messages set to a final status by delivery reports.",
		}),
		Sent:   reports.WithLabelValues("sent"),
		Failed: reports.WithLabelValues("failed"),
		Acked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apitosms_queue_claims_acked_total",
			Help: "Claims confirmed by the ingress that wrote their answer.",
		}),
		Expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apitosms_queue_claims_expired_total",
			Help: "Claims not confirmed within the confirm timeout (ingress died, request timed out, ack lost), swept back.",
		}),
		Requeued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apitosms_queue_requeued_messages_total",
			Help: "Messages of expired claims set back to new at their FIFO place.",
		}),
		Promoted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apitosms_queue_promoted_messages_total",
			Help: "Scheduled messages (sendAt) that became due and wait for hand-out.",
		}),
		MsgExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apitosms_queue_expired_messages_total",
			Help: "Messages expired (status 4): lifetime (ttl, validUntil) ended while waiting, or hand-out lease ran out.",
		}),
	}
	for _, c := range []prometheus.Collector{reports, m.Ingested, m.Claimed, m.ClaimWait, m.ClaimGroup, m.Reported, m.Acked, m.Expired, m.Requeued, m.Promoted, m.MsgExpired} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
