package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/apitosms/apitosms/libs/buildinfo"
	"github.com/apitosms/apitosms/libs/config"
	"github.com/apitosms/apitosms/libs/events"
)

// healthReadyBudget bounds one service's Ready check in a health answer:
// the asker waits about a second for every replica.
const healthReadyBudget = 400 * time.Millisecond

// answerHealth subscribes this process to the health subject (no queue
// group: every process answers) with its targets' readiness, its build and
// the backlog gauges of events.HealthGauges its registry holds. Problems
// pass through the redactor: no secret leaves in an answer.
func answerHealth(in *infra, names []string, svcs []service, rd *config.Redactor) (*nats.Subscription, error) {
	host, _ := os.Hostname()
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	replica := host + "/" + hex.EncodeToString(id)
	return in.broker.Conn.Subscribe(in.names.Health(), func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		r := events.HealthReply{Replica: replica, Version: buildinfo.Version(), Commit: buildinfo.Commit(), Gauges: map[string]float64{}}
		for i, s := range svcs {
			ctx, cancel := context.WithTimeout(context.Background(), healthReadyBudget)
			err := s.Ready(ctx)
			cancel()
			h := events.ServiceHealth{Name: names[i], Ready: err == nil}
			if err != nil {
				h.Problem = rd.Redact(err.Error())
			}
			r.Services = append(r.Services, h)
		}
		if fams, err := in.reg.Gather(); err == nil {
			for _, f := range fams {
				if !slices.Contains(events.HealthGauges, f.GetName()) {
					continue
				}
				for _, g := range f.GetMetric() {
					r.Gauges[f.GetName()] += g.GetGauge().GetValue()
				}
			}
		}
		b, err := json.Marshal(r)
		if err != nil {
			return
		}
		_ = m.Respond(b)
	})
}
