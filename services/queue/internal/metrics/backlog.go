package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Backlog is the gauges of what the queue holds, refreshed periodically
// (sweep.RunBacklog), totals over every account.
type Backlog struct {
	Waiting       prometheus.Gauge
	Initiated     prometheus.Gauge
	OldestWaiting prometheus.Gauge
	PhonesOnline  prometheus.Gauge
}

// NewBacklog registers the backlog gauges on reg (promauto: it panics if one is there already, a wiring mistake).
func NewBacklog(reg prometheus.Registerer) *Backlog {
	f := promauto.With(prometheus.WrapRegistererWithPrefix("apitosms_queue_", reg))
	m := &Backlog{
		Waiting: f.NewGauge(prometheus.GaugeOpts{
			Name: "waiting_messages",
			Help: "Messages waiting to be handed out (status new), all accounts; refreshed every APITOSMS_QUEUE_BACKLOG_INTERVAL (15 s).",
		}),
		Initiated: f.NewGauge(prometheus.GaugeOpts{
			Name: "initiated_messages",
			Help: "Messages handed out and not reported final yet (status initiated), all accounts; refreshed every APITOSMS_QUEUE_BACKLOG_INTERVAL (15 s).",
		}),
		OldestWaiting: f.NewGauge(prometheus.GaugeOpts{
			Name: "oldest_waiting_seconds",
			Help: "Age of the oldest waiting message (0 when none waits); refreshed every APITOSMS_QUEUE_BACKLOG_INTERVAL (15 s).",
		}),
		PhonesOnline: f.NewGauge(prometheus.GaugeOpts{
			Name: "phones_online",
			Help: "Phones seen within APITOSMS_PHONE_OFFLINE_AFTER, all accounts; refreshed every APITOSMS_QUEUE_BACKLOG_INTERVAL (15 s).",
		}),
	}
	return m
}
