package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"

	"github.com/apitosms/apitosms/libs/events"
)

// The operator's system page: every running process's answer to the
// health subject (gathered over NATS within systemWait, so a split
// deployment shows every replica and a service none answered for), the
// backlog gauges those answers carry, and every durable consumer's lag
// from JetStream.

type gauge struct {
	Label, Value string
}

type consumerLag struct {
	Stream, Consumer    string
	Pending, AckPending uint64
	Redelivered         int
}

// serviceRow is one service over every replica that runs it.
type serviceRow struct {
	Name     string
	Replicas int
	Ready    int
	Versions string
	Problems []string
}

type systemData struct {
	Gauges    []gauge
	Consumers []consumerLag
	Services  []serviceRow
	Replicas  []events.HealthReply
}

// systemGauges are the health answers' gauges the page shows.
var systemGauges = []struct{ name, label, unit string }{
	{"apitosms_queue_waiting_messages", "Waiting messages", ""},
	{"apitosms_queue_oldest_waiting_seconds", "Oldest waiting message", " s"},
	{"apitosms_queue_initiated_messages", "Handed out, not reported", ""},
	{"apitosms_queue_phones_online", "Phones online", ""},
	{"apitosms_webhooks_backlog_events", "Webhook events undelivered", ""},
	{"apitosms_webhooks_oldest_undelivered_seconds", "Oldest undelivered webhook event", " s"},
}

// systemWait is how long the page waits for replicas' health answers.
const systemWait = 800 * time.Millisecond

// gatherHealth publishes one health request and collects every answer
// that arrives within wait (replicas answer independently; none answering
// is an empty list, not an error).
func gatherHealth(ctx context.Context, nc *nats.Conn, subject string, wait time.Duration) ([]events.HealthReply, error) {
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, []byte("{}")); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var out []events.HealthReply
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return out, nil
			}
			return out, err
		}
		var r events.HealthReply
		if json.Unmarshal(m.Data, &r) == nil {
			out = append(out, r)
		}
	}
}

// summarize turns the replicas' answers into the page's gauges (the
// largest of each: every replica of a service reads the same totals) and
// one row per known service.
func summarize(replies []events.HealthReply) ([]gauge, []serviceRow) {
	var gauges []gauge
	for _, g := range systemGauges {
		v, seen := 0.0, false
		for _, r := range replies {
			if x, ok := r.Gauges[g.name]; ok {
				v, seen = max(v, x), true
			}
		}
		if seen {
			gauges = append(gauges, gauge{Label: g.label, Value: fmt.Sprintf("%.0f%s", v, g.unit)})
		}
	}
	rows := map[string]*serviceRow{}
	for _, n := range events.Services {
		rows[n] = &serviceRow{Name: n}
	}
	versions := map[string][]string{}
	for _, r := range replies {
		for _, s := range r.Services {
			row, ok := rows[s.Name]
			if !ok {
				row = &serviceRow{Name: s.Name}
				rows[s.Name] = row
			}
			row.Replicas++
			if s.Ready {
				row.Ready++
			} else {
				row.Problems = append(row.Problems, r.Replica+": "+s.Problem)
			}
			if !slices.Contains(versions[s.Name], r.Version) {
				versions[s.Name] = append(versions[s.Name], r.Version)
			}
		}
	}
	out := make([]serviceRow, 0, len(rows))
	for _, row := range rows {
		sort.Strings(versions[row.Name])
		row.Versions = strings.Join(versions[row.Name], ", ")
		out = append(out, *row)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return gauges, out
}

func (w *Web) systemPage(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Second)
	defer cancel()
	replies, err := gatherHealth(ctx, w.d.Conn, w.d.Names.Health(), systemWait)
	if err != nil {
		return err
	}
	sort.Slice(replies, func(i, j int) bool { return replies[i].Replica < replies[j].Replica })
	d := systemData{Replicas: replies}
	d.Gauges, d.Services = summarize(replies)
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
	return w.render(c, "system", view{Title: "System", Session: sess(c), Nav: "system", Data: d})
}
