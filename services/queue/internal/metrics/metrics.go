// Package metrics declares the queue service's own Prometheus metrics.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the queue service. No label carries an account, phone or hash.
type Metrics struct {
	Ingested   prometheus.Counter   // messages newly stored
	Claimed    prometheus.Counter   // messages handed out
	ClaimWait  prometheus.Histogram // read-your-writes wait before a claim
	ClaimGroup prometheus.Histogram // jobs (claims, acks, SQLite report batches) sharing one transaction
	Reported   prometheus.Counter   // messages set final by delivery reports
	Sent       prometheus.Counter   // outcomes recorded: sent
	Failed     prometheus.Counter   // outcomes recorded: failed
	Acked      prometheus.Counter   // open claims closed by their ingress's ack
	Expired    prometheus.Counter   // open claims swept after their confirm timeout
	Requeued   prometheus.Counter   // messages of swept claims set back to new
	Promoted   prometheus.Counter   // scheduled messages that became due (§12)
	MsgExpired prometheus.Counter   // messages expired: lifetime or lease (§12)
}

// New registers the metrics on reg (promauto: it panics if one is there already, a wiring mistake).
func New(reg prometheus.Registerer) *Metrics {
	f := promauto.With(prometheus.WrapRegistererWithPrefix("apitosms_queue_", reg))
	reports := f.NewCounterVec(prometheus.CounterOpts{
		Name: "outcomes_total",
		Help: "Messages that reached a final status reported by a phone, by status (sent, failed); a repeated report is not counted.",
	}, []string{"status"})
	m := &Metrics{
		Ingested: f.NewCounter(prometheus.CounterOpts{
			Name: "ingested_messages_total",
			Help: "Accepted messages stored in the queue (redeliveries not counted).",
		}),
		Claimed: f.NewCounter(prometheus.CounterOpts{
			Name: "claimed_messages_total",
			Help: "Messages handed out to phones.",
		}),
		ClaimWait: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "claim_wait_seconds",
			Help:    "Time a claim waited for ingestion to catch up with the accepted stream (read-your-writes).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 3, 11),
		}),
		ClaimGroup: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "claim_group_size",
			Help:    "Claims, claim acks and (on SQLite) reported batches committed in one shared transaction (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32},
		}),
		Reported: f.NewCounter(prometheus.CounterOpts{
			Name: "reported_messages_total",
			Help: "Queued messages set to a final status by delivery reports.",
		}),
		Sent:   reports.WithLabelValues("sent"),
		Failed: reports.WithLabelValues("failed"),
		Acked: f.NewCounter(prometheus.CounterOpts{
			Name: "claims_acked_total",
			Help: "Claims confirmed by the ingress that wrote their answer.",
		}),
		Expired: f.NewCounter(prometheus.CounterOpts{
			Name: "claims_expired_total",
			Help: "Claims not confirmed within the confirm timeout (ingress died, request timed out, ack lost), swept back.",
		}),
		Requeued: f.NewCounter(prometheus.CounterOpts{
			Name: "requeued_messages_total",
			Help: "Messages of expired claims set back to new at their FIFO place.",
		}),
		Promoted: f.NewCounter(prometheus.CounterOpts{
			Name: "promoted_messages_total",
			Help: "Scheduled messages (sendAt) that became due and wait for hand-out.",
		}),
		MsgExpired: f.NewCounter(prometheus.CounterOpts{
			Name: "expired_messages_total",
			Help: "Messages expired (status 4): lifetime (ttl, validUntil) ended while waiting, or hand-out lease ran out.",
		}),
	}
	return m
}
