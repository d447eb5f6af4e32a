package web

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/buildinfo"
)

// The operator's system page: the backlog figures this process's services
// publish as metrics, every durable consumer's lag from JetStream, and this
// server's version and readiness.

type gauge struct {
	Label, Value string
}

type consumerLag struct {
	Stream, Consumer    string
	Pending, AckPending uint64
	Redelivered         int
}

type systemData struct {
	Gauges    []gauge
	Consumers []consumerLag
	Version   string
	Commit    string
	Ready     string
	InProcess bool
}

// systemGauges are the metrics the page shows, with their labels.
var systemGauges = []struct{ name, label, unit string }{
	{"apitosms_queue_waiting_messages", "Waiting messages", ""},
	{"apitosms_queue_oldest_waiting_seconds", "Oldest waiting message", "s"},
	{"apitosms_queue_initiated_messages", "Handed out, not reported", ""},
	{"apitosms_webhooks_backlog_events", "Webhook events undelivered", ""},
	{"apitosms_webhooks_oldest_undelivered_seconds", "Oldest undelivered webhook event", "s"},
	{"apitosms_ready", "Ready (this process; 1 = yes)", ""},
}

func (w *Web) systemPage(c *fiber.Ctx) error {
	d := systemData{Version: buildinfo.Version(), Commit: buildinfo.Commit()}
	if w.d.Gatherer != nil {
		fams, err := w.d.Gatherer.Gather()
		if err == nil {
			byName := map[string]float64{}
			for _, f := range fams {
				for _, m := range f.GetMetric() {
					if m.GetGauge() != nil {
						byName[f.GetName()] += m.GetGauge().GetValue()
					}
				}
			}
			for _, g := range systemGauges {
				v, ok := byName[g.name]
				if !ok {
					continue
				}
				d.InProcess = true
				d.Gauges = append(d.Gauges, gauge{Label: g.label, Value: fmt.Sprintf("%.0f%s", v, g.unit)})
			}
		}
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Second)
	defer cancel()
	for _, stream := range []string{w.d.Names.AcceptedStream(), w.d.Names.ReportedStream(), w.d.Names.NotifyStream()} {
		st, err := w.d.JS.Stream(ctx, stream)
		if err != nil {
			continue // not created (yet) in this deployment
		}
		lister := st.ListConsumers(ctx)
		for info := range lister.Info() {
			d.Consumers = append(d.Consumers, consumerLag{Stream: stream, Consumer: info.Name,
				Pending: info.NumPending, AckPending: uint64(info.NumAckPending), Redelivered: info.NumRedelivered})
		}
	}
	sort.Slice(d.Consumers, func(i, j int) bool {
		return d.Consumers[i].Stream+d.Consumers[i].Consumer < d.Consumers[j].Stream+d.Consumers[j].Consumer
	})
	d.Ready = "ready"
	if err := w.callAPI(ctx, "GET", "/readyz", nil, "", "", nil); err != nil {
		d.Ready = "not ready (" + err.Error() + ")"
	}
	return w.render(c, "system", view{Title: "System", Session: sess(c), Nav: "system", Data: d})
}
