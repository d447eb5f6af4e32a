// Package changes broadcasts billing's account changes to the token-lookup
// caches of every ingress replica (events.BillingAccountChanged), and waits
// for the replicas present (events.IngressCachesBucket) to acknowledge the
// ones that must hold at once.
package changes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/events"
)

// Notifier publishes events.AccountChanged.
type Notifier struct {
	nc      *nats.Conn
	names   events.Names
	log     *slog.Logger
	ackWait time.Duration // how long Changed waits for the replicas' acknowledgements

	unacked prometheus.Counter // Changed calls some present replica did not acknowledge in time

	mu      sync.Mutex
	present map[string]time.Time // ingress replica id -> when its key was last written
}

// AckWait is how long Changed waits for the present ingress replicas.
const AckWait = 2 * time.Second

// New returns a notifier publishing on nc; a nil nc makes a notifier that
// does nothing (tests of the store alone). unacked counts the changes some
// present replica did not acknowledge in time.
func New(nc *nats.Conn, names events.Names, unacked prometheus.Counter, log *slog.Logger) *Notifier {
	return &Notifier{nc: nc, names: names, log: log, ackWait: AckWait, present: map[string]time.Time{}, unacked: unacked}
}

// SetAckWait changes the bound of Changed (tests).
func (n *Notifier) SetAckWait(d time.Duration) { n.ackWait = d }

// Watch follows the presence bucket until ctx is done: it returns once the
// replicas present now are known, and keeps the set current in the
// background.
func (n *Notifier) Watch(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if n == nil || n.nc == nil {
		return nil
	}
	kv, err := broker.EnsureKeyValue(ctx, js, events.IngressCachesConfig(n.names, replicas))
	if err != nil {
		return fmt.Errorf("ingress caches bucket: %w", err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch ingress caches: %w", err)
	}
	known := make(chan struct{})
	go func() {
		defer func() { _ = w.Stop() }()
		once := sync.OnceFunc(func() { close(known) })
		for {
			select {
			case <-ctx.Done():
				once()
				return
			case e, ok := <-w.Updates():
				if !ok {
					once()
					return
				}
				if e == nil { // the values present at the start were all delivered
					once()
					continue
				}
				n.mu.Lock()
				if e.Operation() == jetstream.KeyValuePut {
					n.present[e.Key()] = e.Created()
				} else {
					delete(n.present, e.Key())
				}
				n.mu.Unlock()
			}
		}
	}()
	select {
	case <-known:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// presentNow returns the replicas whose key was written within
// events.IngressCacheTTL of now.
func (n *Notifier) presentNow(now time.Time) map[string]bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	ids := make(map[string]bool, len(n.present))
	for id, at := range n.present {
		if now.Sub(at) < events.IngressCacheTTL {
			ids[id] = true
		}
	}
	return ids
}

// flushWait bounds waiting for the server to take a broadcast.
const flushWait = 2 * time.Second

// Changed tells every ingress replica that account id's token lookup
// changed, after the change was committed, and returns once every present
// replica acknowledged it (it has dropped the account's entries), or after
// the bound: then it is logged and counted, and the caches' time to live
// bounds how long a silent replica can serve the old answer.
func (n *Notifier) Changed(id int64) {
	if n == nil || n.nc == nil {
		return
	}
	want := n.presentNow(time.Now())
	if len(want) == 0 {
		n.Released(id)
		return
	}
	missing, err := n.broadcastAcked(id, want)
	if err != nil || missing > 0 {
		n.unacked.Inc()
		if n.log != nil {
			n.log.Warn("account change not acknowledged by every ingress replica; their caches expire on their own",
				"account", id, "replicas", len(want), "missing", missing, "err", err)
		}
	}
}

// broadcastAcked publishes the change with a reply subject and collects
// acknowledgements until each of want answered or the bound passed; it
// returns how many did not answer.
func (n *Notifier) broadcastAcked(id int64, want map[string]bool) (int, error) {
	data, err := events.Marshal(events.AccountChanged{AccountID: id})
	if err != nil {
		return len(want), err
	}
	inbox := nats.NewInbox()
	sub, err := n.nc.SubscribeSync(inbox)
	if err != nil {
		return len(want), err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := n.nc.PublishRequest(n.names.BillingAccountChanged(), inbox, data); err != nil {
		return len(want), err
	}
	deadline := time.Now().Add(n.ackWait)
	for len(want) > 0 {
		m, err := sub.NextMsg(time.Until(deadline))
		if errors.Is(err, nats.ErrTimeout) {
			return len(want), nil
		}
		if err != nil {
			return len(want), err
		}
		delete(want, string(m.Data))
	}
	return 0, nil
}

// Released tells the ingress replicas that account id's usage went down,
// without waiting for them: ingress never keeps an answer saying the limit
// is used up, so a late drop only leaves an entry whose usage is behind
// (billing's reservation decides). It waits until the NATS server has taken
// the message (a flush).
func (n *Notifier) Released(id int64) {
	if n == nil || n.nc == nil {
		return
	}
	data, err := events.Marshal(events.AccountChanged{AccountID: id})
	if err == nil {
		err = n.nc.Publish(n.names.BillingAccountChanged(), data)
	}
	if err == nil {
		err = n.nc.FlushTimeout(flushWait)
	}
	if err != nil && n.log != nil {
		n.log.Warn("broadcast account change failed; ingress caches expire on their own", "account", id, "err", err)
	}
}
