package notify

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
)

// Message events are published only for accounts with an enabled endpoint
// subscribed to their type: most accounts have none, and an event nobody
// receives cost the drain half its CPU (docs/benchmarks.md, 2026-12-01).
//
// Subscriptions keeps every account's subscribed types in memory: a full
// load from the webhooks service (webhooks.v1.subscriptions) at start and
// every RefreshEvery, and each change as the webhooks service announces it
// (webhooks.v1.changed) before answering the request that made it.
//
// The guarantee: an event is published for every message whose report (or
// claim, for message.initiated) this replica receives from the NATS server
// after the request creating or enabling a subscribed endpoint was
// answered. The webhooks service flushes the announcement to the server
// before answering, the server passes it to this connection before any
// message it is sent later, and the connection's reader puts it in a
// channel that Refresh empties before each decision. With one NATS server
// (the embedded one, or a single external server) this holds exactly; in a
// NATS cluster the announcement and a later report may reach this replica
// over different routes, so it holds up to the routes' lag (milliseconds).
//
// Changes only ever add types between two full loads; a type no endpoint
// wants any more is dropped at the next full load (events published in
// between are discarded by the webhooks service's fan-out). While nothing
// is known (no full load yet, the webhooks service not answering, or the
// connection reconnected and may have missed announcements) every event is
// published, as if every account subscribed to everything.

// RefreshEvery is how often the subscriptions are loaded in full.
const RefreshEvery = 30 * time.Second

// retryEvery is how often a failed load is tried again.
const retryEvery = time.Second

// loadTimeout bounds one page of a full load.
const loadTimeout = 5 * time.Second

// pageSize is the accounts asked for per page of a full load.
const pageSize = 5000

// Subscriptions answers which accounts want which event types.
type Subscriptions struct {
	nc    *nats.Conn
	names events.Names
	log   *slog.Logger
	sub   *nats.Subscription // the announcements, read by Refresh
	kick  chan struct{}      // asks for a full load now

	knownGauge prometheus.Gauge // optional: 1 while known

	mu         sync.RWMutex
	known      bool             // a full load is installed and no announcement was missed since
	accounts   map[int64]uint16 // subscribed types as bits (index in events.NotificationTypes)
	loading    bool
	during     []events.WebhookSubscription // announcements received while a load runs
	reconnects uint64                       // of nc when the installed load started
}

// NewSubscriptions subscribes to the announcements; Run loads and refreshes.
// Until the first load completes, Wants says yes to everything.
func NewSubscriptions(nc *nats.Conn, names events.Names, log *slog.Logger) (*Subscriptions, error) {
	sub, err := nc.SubscribeSync(names.WebhooksChanged())
	if err != nil {
		return nil, err
	}
	// Announcements are small and rare; let many wait between two reads
	// rather than be dropped as a slow consumer.
	_ = sub.SetPendingLimits(1<<20, 256<<20)
	return &Subscriptions{nc: nc, names: names, log: log, sub: sub, kick: make(chan struct{}, 1)}, nil
}

// bit is the mask bit of typ (0 for an unknown type).
func bit(typ string) uint16 {
	if i := slices.Index(events.NotificationTypes, typ); i >= 0 {
		return 1 << i
	}
	return 0
}

func mask(types []string) uint16 {
	var m uint16
	for _, t := range types {
		m |= bit(t)
	}
	return m
}

// Refresh applies the announcements received so far. Call it once before a
// run of Wants that decides on messages received from NATS.
func (s *Subscriptions) Refresh() {
	if s == nil {
		return
	}
	reconnects := s.nc.Stats().Reconnects
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.known && reconnects != s.reconnects {
		// Announcements sent while the connection was down are lost.
		s.setKnownLocked(false)
		s.kickLocked()
	}
	for {
		msg, err := s.sub.NextMsg(0)
		if err != nil {
			break
		}
		var c events.WebhookSubscription
		if err := events.Unmarshal(msg.Data, &c); err != nil {
			s.log.Warn("bad webhook subscription announcement", "err", err)
			continue
		}
		s.addLocked(c)
		if s.loading {
			s.during = append(s.during, c)
		}
	}
	if !s.sub.IsValid() && s.known {
		s.setKnownLocked(false)
		s.kickLocked()
	}
}

func (s *Subscriptions) setKnownLocked(known bool) {
	s.known = known
	if s.knownGauge != nil {
		v := 0.0
		if known {
			v = 1
		}
		s.knownGauge.Set(v)
	}
}

func (s *Subscriptions) kickLocked() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Subscriptions) addLocked(c events.WebhookSubscription) {
	if s.accounts == nil {
		return // nothing loaded yet: everything is published anyway
	}
	if m := mask(c.Types); m != 0 {
		s.accounts[c.AccountID] |= m
	}
}

// Wants reports whether account may have an endpoint subscribed to typ
// (true whenever that is not known).
func (s *Subscriptions) Wants(account int64, typ string) bool { return s.WantsOr(account, typ, true) }

// WantsOr is Wants answering unknown while the subscriptions are not known.
func (s *Subscriptions) WantsOr(account int64, typ string, unknown bool) bool {
	if s == nil {
		return unknown
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.known {
		return unknown
	}
	return s.accounts[account]&bit(typ) != 0
}

// Known reports whether a full load is installed (tests).
func (s *Subscriptions) Known() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.known
}

// Run loads the subscriptions now and every RefreshEvery (every second
// while loads fail), until ctx ends; then it unsubscribes.
func (s *Subscriptions) Run(ctx context.Context) {
	defer func() { _ = s.sub.Unsubscribe() }()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		wait := RefreshEvery
		if err := s.load(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Debug("load webhook subscriptions; publishing every message event meanwhile", "err", err)
			wait = retryEvery
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}

// load reads every account's subscriptions and installs them, with the
// announcements received meanwhile added.
func (s *Subscriptions) load(ctx context.Context) error {
	reconnects := s.nc.Stats().Reconnects
	s.mu.Lock()
	s.loading, s.during = true, s.during[:0]
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.loading, s.during = false, nil
		s.mu.Unlock()
	}()
	all := map[int64]uint16{}
	for after := int64(0); ; {
		pctx, cancel := context.WithTimeout(ctx, loadTimeout)
		page, err := rpc.Call[events.SubscriptionsRequest, events.SubscriptionsPage](pctx, s.nc, s.names.WebhooksSubscriptions(),
			events.SubscriptionsRequest{After: after, Limit: pageSize})
		cancel()
		if err != nil {
			return err
		}
		for _, a := range page.Accounts {
			if m := mask(a.Types); m != 0 {
				all[a.AccountID] = m
			}
			after = max(after, a.AccountID)
		}
		if !page.More || len(page.Accounts) == 0 {
			break
		}
	}
	s.Refresh() // announcements that arrived during the load go in s.during
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts = all
	for _, c := range s.during {
		s.addLocked(c)
	}
	s.reconnects = reconnects
	s.setKnownLocked(true)
	return nil
}
