package notify

import (
	"context"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// message.initiated is the only message event an endpoint gets only when it
// asks for it, and a claim is the hand-out hot path: Initiated publishes it
// only for accounts with an enabled endpoint subscribed to it, as the
// Notifier's Subscriptions know (an endpoint gets the hand-outs of the
// claims this replica receives after its creation was answered). Unlike the
// other events it is not published while the subscriptions are unknown (no
// webhooks service answering, e.g. none deployed): publishing every
// hand-out then would put a lookup and a stream write on every claim, as it
// did before subscriptions were known (the former per-account cache also
// counted no answer as no subscription).

// Initiated publishes message.initiated for the accounts that want it.
type Initiated struct {
	n  *Notifier
	st *store.Store
}

// NewInitiated returns the publisher; st reads the claimed messages as
// tracking shows them. Without n's Subscriptions every hand-out is
// published.
func NewInitiated(n *Notifier, st *store.Store) *Initiated {
	return &Initiated{n: n, st: st}
}

func (i *Initiated) wants(account int64) bool {
	i.n.subs.Refresh()
	return i.n.subs != nil && i.n.subs.WantsOr(account, events.TypeMessageInitiated, false)
}

// Claimed publishes message.initiated for the messages at positions, just
// handed out to account under a committed claim, if the account wants it,
// and returns once the stream stored them. The caller answers the claim
// only after: if this fails, the claim is not answered, is never confirmed
// and its messages are handed out again (a new attempt, a new event), so
// every hand-out that reaches a phone has its event.
func (i *Initiated) Claimed(ctx context.Context, account int64, positions []int64) error {
	if i == nil || len(positions) == 0 || !i.wants(account) {
		return nil
	}
	msgs, err := i.st.Lookup(ctx, account, positions)
	if err != nil {
		return err
	}
	_, err = i.n.Messages(ctx, msgs)
	return err
}
