// Package events declares, once, everything services exchange over NATS:
// stream, subject, durable-consumer and bucket names, and the payloads.
//
// Every name derives from a namespace so that several deployments (or
// several tests) can share one NATS server without seeing each other.
package events

import (
	"strings"
)

// DefaultNamespace is the namespace of a normal deployment.
const DefaultNamespace = "apitosms"

// Durable consumer names. They never change: renaming one would make the
// server start a fresh consumer from the beginning of its stream.
const (
	DurableQueueIngest   = "queue-ingest"
	DurableStatusIngest  = "status-ingest"
	DurableQueueReported = "queue-reported"
)

// Queue groups for request/reply handlers: replicas of one service share one.
const (
	GroupBilling  = "billing"
	GroupQueue    = "queue"
	GroupStatus   = "status"
	GroupReleases = "releases"
)

// Names derives stream, subject and bucket names from a namespace.
type Names struct {
	ns     string // subject prefix, lower case, e.g. "apitosms"
	stream string // stream and bucket prefix, upper case, e.g. "APITOSMS"
}

// NewNames returns the names of namespace ns. Characters outside
// [A-Za-z0-9_-] are replaced with '_' so the result is a valid subject token
// and stream name.
func NewNames(ns string) Names {
	if ns == "" {
		ns = DefaultNamespace
	}
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '_'
	}, ns)
	return Names{ns: strings.ToLower(clean), stream: strings.ToUpper(clean)}
}

// Namespace is the subject prefix of these names.
func (n Names) Namespace() string { return n.ns }

// AcceptedStream holds every accepted SMS batch (AcceptedBatch), file
// storage, in acceptance order. The queue and status services consume it.
func (n Names) AcceptedStream() string { return n.stream + "_SMS_ACCEPTED" }

// AcceptedSubject is the subject of AcceptedBatch events.
func (n Names) AcceptedSubject() string { return n.ns + ".sms.v1.accepted" }

// ReportedStream holds delivery reports applied by the status service
// (ReportedBatch). The queue service consumes it.
func (n Names) ReportedStream() string { return n.stream + "_SMS_REPORTED" }

// ReportedSubject is the subject of ReportedBatch events.
func (n Names) ReportedSubject() string { return n.ns + ".sms.v1.reported" }

// DeadLetterSubject is where a consumer puts a message it gave up on.
func (n Names) DeadLetterSubject(durable string) string {
	return n.ns + ".deadletter.v1." + durable
}

// DeadLetterStream keeps dead letters for an operator to inspect.
func (n Names) DeadLetterStream() string { return n.stream + "_DEADLETTER" }

// DeadLetterSubjects is the wildcard of all dead-letter subjects.
func (n Names) DeadLetterSubjects() string { return n.ns + ".deadletter.v1.>" }

// RateLimitBucket is the key-value bucket (memory) of per-account request windows.
func (n Names) RateLimitBucket() string { return n.stream + "_RATELIMIT" }

// IdempotencyBucket is the key-value bucket (file, 24 h TTL) of Idempotency-Key results.
func (n Names) IdempotencyBucket() string { return n.stream + "_IDEMPOTENCY" }

// KeysBucket is the key-value bucket (file) of the deployment's secret keys
// (libs/hashid).
func (n Names) KeysBucket() string { return n.stream + "_KEYS" }

// ReleasesBucket is the object store bucket holding APK files.
func (n Names) ReleasesBucket() string { return n.stream + "_RELEASES" }

// RPC subjects: request/reply, answered by one member of the owning service's group.
func (n Names) rpc(s string) string { return n.ns + ".rpc." + s }

// BillingAuth: AuthRequest -> AuthReply.
func (n Names) BillingAuth() string { return n.rpc("billing.v1.auth") }

// BillingReserve: ReserveRequest -> ReserveReply.
func (n Names) BillingReserve() string { return n.rpc("billing.v1.reserve") }

// BillingReserveMany: ReserveManyRequest -> ReserveManyReply (ingress sends
// the reservations of concurrent requests in one call).
func (n Names) BillingReserveMany() string { return n.rpc("billing.v1.reserve-many") }

// BillingRelease: ReleaseRequest -> ReleaseReply.
func (n Names) BillingRelease() string { return n.rpc("billing.v1.release") }

// QueueClaim: ClaimRequest -> ClaimReply.
func (n Names) QueueClaim() string { return n.rpc("queue.v1.claim") }

// QueueClaimAck carries ClaimAck messages (core NATS, no reply): ingress
// confirms that the answer holding a claim's messages was handed to the
// phone's connection. Queue replicas share them through GroupQueue.
func (n Names) QueueClaimAck() string { return n.ns + ".queue.v1.claim-ack" }

// StatusApply: ApplyRequest -> ApplyReply.
func (n Names) StatusApply() string { return n.rpc("status.v1.apply") }

// Streams lists every stream of the namespace (used by tests to clean up).
func (n Names) Streams() []string {
	return []string{n.AcceptedStream(), n.ReportedStream(), n.DeadLetterStream()}
}

// Buckets lists every key-value bucket of the namespace.
func (n Names) Buckets() []string {
	return []string{n.RateLimitBucket(), n.IdempotencyBucket(), n.KeysBucket(), n.IngressCachesBucket()}
}
