package events

// Health: HealthRequest -> HealthReply, answered by every running
// apitosms process (a plain subscription, no queue group), so one request
// gathers every replica: the operator's system page publishes it and
// collects the answers that arrive within a short deadline.
func (n Names) Health() string { return n.rpc("health.v1.replicas") }

// HealthRequest asks a process how it is; it carries nothing.
type HealthRequest struct{}

// HealthReply is one process: its targets' readiness, its build and the
// backlog gauges its services keep (HealthGauges, present only when the
// service that keeps them runs in the process).
type HealthReply struct {
	Replica  string             `json:"replica"` // the process's NATS connection name and host
	Version  string             `json:"version"`
	Commit   string             `json:"commit,omitempty"`
	Services []ServiceHealth    `json:"services"`
	Gauges   map[string]float64 `json:"gauges"`
}

// ServiceHealth is one target's readiness in a process.
type ServiceHealth struct {
	Name    string `json:"name"`
	Ready   bool   `json:"ready"`
	Problem string `json:"problem,omitempty"` // why not ready (no secret: the services' Ready errors)
}

// Services are the targets a deployment runs; the system page lists each,
// "no replica answered" for one that did not.
var Services = []string{"ingress", "billing", "queue", "status", "webhooks", "stores", "releases", "console"}

// HealthGauges are the metrics a HealthReply carries. Each is a total over
// every account read from the database by its service, so every replica
// of one service reports the same figure (refreshed on its own timer):
// the system page shows the largest.
var HealthGauges = []string{
	"apitosms_queue_waiting_messages",
	"apitosms_queue_oldest_waiting_seconds",
	"apitosms_queue_initiated_messages",
	"apitosms_queue_phones_online",
	"apitosms_webhooks_backlog_events",
	"apitosms_webhooks_oldest_undelivered_seconds",
}
