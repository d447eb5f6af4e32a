package rpcapi

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/services/queue/internal/metrics"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// maxPendingAcks bounds the acks kept while the database refuses them; past
// it the oldest are dropped (their claims are swept: handed out again, never
// lost).
const maxPendingAcks = 1 << 20

// ackRetry is the pause before acks that failed to commit are tried again.
const ackRetry = time.Second

// Acks closes the claims acknowledged on Names.QueueClaimAck. Replicas
// share the acks through the queue group; every ack that arrives while one
// batch commits goes into the next, so the database sees one DELETE per
// batch (on SQLite inside a claim group's transaction). An ack is
// best-effort: one lost or dropped leaves its claim open until the sweep
// returns its messages to new, so they are handed out again.
type Acks struct {
	st      *store.ClaimGroup
	m       *metrics.Metrics
	log     *slog.Logger
	sub     *nats.Subscription
	mu      sync.Mutex
	pending []int64
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

// StartAcks subscribes to claim acks and starts closing claims through st.
func StartAcks(nc *nats.Conn, n events.Names, st *store.ClaimGroup, m *metrics.Metrics, log *slog.Logger) (*Acks, error) {
	a := &Acks{st: st, m: m, log: log, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	sub, err := nc.QueueSubscribe(n.QueueClaimAck(), events.GroupQueue, a.receive)
	if err != nil {
		return nil, err
	}
	a.sub = sub
	go a.loop()
	return a, nil
}

func (a *Acks) receive(msg *nats.Msg) {
	var ack events.ClaimAck
	if err := events.Unmarshal(msg.Data, &ack); err != nil {
		a.log.Warn("malformed claim ack ignored", "err", err)
		return
	}
	a.add(ack.ClaimIDs, true)
}

// add queues ids to close, waking the loop if kick.
func (a *Acks) add(ids []int64, kick bool) {
	if len(ids) == 0 {
		return
	}
	a.mu.Lock()
	a.pending = append(a.pending, ids...)
	if over := len(a.pending) - maxPendingAcks; over > 0 {
		a.pending = a.pending[over:]
	}
	a.mu.Unlock()
	if kick {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

func (a *Acks) take() []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := a.pending
	a.pending = nil
	return ids
}

func (a *Acks) loop() {
	defer close(a.done)
	var retry <-chan time.Time
	for {
		select {
		case <-a.kick:
		case <-retry:
		case <-a.stop:
			a.flush()
			return
		}
		retry = nil
		if !a.flush() {
			retry = time.After(ackRetry)
		}
	}
}

// flush closes the pending claims; on failure it keeps them for a retry and
// returns false.
func (a *Acks) flush() bool {
	ids := a.take()
	if len(ids) == 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := a.st.Ack(ctx, ids)
	if err != nil {
		a.log.Warn("closing acknowledged claims failed; will retry", "claims", len(ids), "err", err)
		a.add(ids, false)
		return false
	}
	a.m.Acked.Add(float64(n))
	return true
}

// Close stops taking acks, closes the claims of those received (up to ctx's
// deadline) and returns. Call it before closing the claim group.
func (a *Acks) Close(ctx context.Context) {
	_ = a.sub.Drain()
	for a.sub.IsValid() && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	close(a.stop)
	select {
	case <-a.done:
	case <-ctx.Done():
	}
}
