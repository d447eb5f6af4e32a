package metrics

import "github.com/prometheus/client_golang/prometheus"

// Backlog is the gauges of what the queue holds, refreshed periodically
// (sweep.RunBacklog), totals over every account.
type Backlog struct {
	Waiting       prometheus.Gauge
	Initiated     prometheus.Gauge
	OldestWaiting prometheus.Gauge
	PhonesOnline  prometheus.Gauge
}

// NewBacklog registers the backlog gauges on reg.
func NewBacklog(reg prometheus.Registerer) (*Backlog, error) {
	m := &Backlog{
		Waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "apitosms_queue_waiting_messages",
			Help: "Messages waiting to be handed out (status new), all accounts; refreshed every APITOSMS_QUEUE_BACKLOG_INTERVAL (15 s).",
		}),
		Initiated: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "apitosms_queue_initiated_messages",
			Help: "Messages handed out and not reported final yet (status initiated), all accounts; refreshed every APITOSMS_QUEUE_BACKLOG_INTERVAL (15 s).",
		}),
		OldestWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "apitosms_queue_oldest_waiting_seconds",
			Help: "Age of the oldest waiting message (0 when none waits); refreshed every APITOSMS_QUEUE_BACKLOG_INTERVAL (15 s).",
		}),
		PhonesOnline: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "apitosms_queue_phones_online",
			Help: "Phones seen within APITOSMS_PHONE_OFFLINE_AFTER, all accounts; refreshed every APITOSMS_QUEUE_BACKLOG_INTERVAL (15 s).",
		}),
	}
	for _, c := range []prometheus.Collector{m.Waiting, m.Initiated, m.OldestWaiting, m.PhonesOnline} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
