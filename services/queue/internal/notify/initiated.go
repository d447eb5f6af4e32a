package notify

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// message.initiated is the only message event an endpoint gets only when it
// asks for it, and a claim is the hand-out hot path: Initiated publishes it
// only for accounts with an enabled endpoint subscribed to it, which it
// learns from the webhooks service (webhooks.v1.list) and remembers for
// SubscriptionTTL. An endpoint subscribing to message.initiated therefore
// gets the hand-outs from at most SubscriptionTTL later on.

// SubscriptionTTL is how long an account's subscription to
// message.initiated is remembered.
const SubscriptionTTL = 30 * time.Second

// askTimeout bounds asking the webhooks service; no answer counts as no
// subscription (for SubscriptionTTL), so claims never wait on it for long.
const askTimeout = 250 * time.Millisecond

// Initiated publishes message.initiated for the accounts that want it.
type Initiated struct {
	n     *Notifier
	nc    *nats.Conn
	names events.Names
	st    *store.Store
	now   func() time.Time

	mu    sync.Mutex
	known map[int64]subscription
}

type subscription struct {
	wants bool
	until time.Time
}

// NewInitiated returns the publisher; st reads the claimed messages as
// tracking shows them.
func NewInitiated(n *Notifier, nc *nats.Conn, names events.Names, st *store.Store) *Initiated {
	return &Initiated{n: n, nc: nc, names: names, st: st, now: time.Now, known: map[int64]subscription{}}
}

// wants reports whether account has an enabled endpoint subscribed to
// message.initiated, from memory when known for less than SubscriptionTTL.
func (i *Initiated) wants(ctx context.Context, account int64) bool {
	now := i.now()
	i.mu.Lock()
	s, ok := i.known[account]
	i.mu.Unlock()
	if ok && now.Before(s.until) {
		return s.wants
	}
	actx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	list, err := rpc.Call[events.WebhookListRequest, events.WebhookList](actx, i.nc, i.names.WebhooksList(), events.WebhookListRequest{AccountID: account})
	wants := false
	if err == nil {
		for _, w := range list.Webhooks {
			if w.Enabled && slices.Contains(w.Events, events.TypeMessageInitiated) {
				wants = true
				break
			}
		}
	}
	i.mu.Lock()
	if len(i.known) > 100_000 {
		clear(i.known) // bound the memory; entries are cheap to learn again
	}
	i.known[account] = subscription{wants: wants, until: now.Add(SubscriptionTTL)}
	i.mu.Unlock()
	return wants
}

// Claimed publishes message.initiated for the messages at positions, just
// handed out to account under a committed claim, if the account wants it,
// and returns once the stream stored them. The caller answers the claim
// only after: if this fails, the claim is not answered, is never confirmed
// and its messages are handed out again (a new attempt, a new event), so
// every hand-out that reaches a phone has its event.
func (i *Initiated) Claimed(ctx context.Context, account int64, positions []int64) error {
	if i == nil || len(positions) == 0 || !i.wants(ctx, account) {
		return nil
	}
	msgs, err := i.st.Lookup(ctx, account, positions)
	if err != nil {
		return err
	}
	_, err = i.n.Messages(ctx, msgs)
	return err
}
