package events

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BillingAccountChanged is the subject billing broadcasts an AccountChanged
// on (core NATS, no stream) after a change that can make a cached token
// lookup wrong: a rotated token, a subscription put or ended, usage given
// back. Every ingress replica subscribes (no queue group) and drops what it
// cached for the account. When the message has a reply subject, each
// replica answers it with its id (IngressCachesBucket) once the account's
// entries are dropped: billing waits for every present replica before it
// answers the change.
func (n Names) BillingAccountChanged() string { return n.ns + ".billing.v1.account-changed" }

// AccountChanged names the account whose token lookup changed.
type AccountChanged struct {
	AccountID int64 `json:"accountId"`
}

// IngressCachesBucket holds one key per ingress replica that caches token
// lookups (its id; the value is empty). A replica writes its key before it
// caches anything, rewrites it every IngressCacheRefresh and deletes it when
// it stops; billing counts a replica present while its key is younger than
// IngressCacheTTL, and waits for the acknowledgement of every present one.
func (n Names) IngressCachesBucket() string { return n.stream + "_INGRESS_CACHES" }

// How often an ingress replica rewrites its key, and how long billing counts
// it present after the last write (a replica killed without deleting its
// key is waited for, up to billing's bound, until then).
const (
	IngressCacheRefresh = 10 * time.Second
	IngressCacheTTL     = 30 * time.Second
)

// IngressCachesConfig is the bucket's configuration, the same for billing
// and ingress (either may create it first). The bucket's own age limit
// removes the keys of replicas that are gone.
func IngressCachesConfig(n Names, replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:   n.IngressCachesBucket(),
		History:  1,
		TTL:      IngressCacheTTL,
		Storage:  jetstream.MemoryStorage,
		Replicas: max(replicas, 1),
	}
}
