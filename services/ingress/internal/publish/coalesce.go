package publish

import (
	"context"
	"sync"
	"time"

	"github.com/apitosms/apitosms/libs/events"
)

// Small requests (a shop sending one order SMS at a time) would each cost one
// fsync on the server. The coalescer lets concurrent small requests share a
// stream message: while one publish is in flight, the requests arriving
// meanwhile gather, and the next publish carries them all (group commit, no
// added delay when idle). Each request still returns only once its items are
// acknowledged. Requests with an Idempotency-Key are never shared: their
// stream message id must derive from their own request id.

// SharedMax is the largest request that is coalesced.
const SharedMax = 64

type shared struct {
	items []events.AcceptedSMS
	done  chan sharedResult
}

type sharedResult struct {
	positions []int64
	err       error
}

// Run runs n coalescing loops until ctx is done; then it publishes what is
// still waiting and returns. Requests may be handed over before Run starts:
// they wait in the channel.
func (p *Publisher) Run(ctx context.Context, n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); p.coalesce(ctx) }()
	}
	wg.Wait()
}

func (p *Publisher) coalesce(ctx context.Context) {
	var group []shared
	var items []events.AcceptedSMS
	for {
		var first shared
		select {
		case first = <-p.shared:
		case <-ctx.Done():
			select {
			case first = <-p.shared: // drain what is left before stopping
			default:
				return
			}
		}
		group = append(group[:0], first)
		items = append(items[:0], first.items...)
	gather:
		for len(items) < events.MaxItemsPerEvent-SharedMax {
			select {
			case next := <-p.shared:
				group = append(group, next)
				items = append(items, next.items...)
			default:
				break gather
			}
		}
		positions, err := p.publish(context.WithoutCancel(ctx), NewRequestID(), time.Now().UTC(), items)
		for _, g := range group {
			r := sharedResult{err: err}
			if err == nil {
				r.positions, positions = positions[:len(g.items):len(g.items)], positions[len(g.items):]
			}
			g.done <- r
		}
	}
}

// publishShared hands a small request to the coalescer and waits for its items
// to be acknowledged.
func (p *Publisher) publishShared(ctx context.Context, items []events.AcceptedSMS) ([]int64, error) {
	s := shared{items: items, done: make(chan sharedResult, 1)}
	select {
	case p.shared <- s:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once handed over, the items may be published: wait for the outcome even
	// if the caller gives up, so a 503 is never sent for stored messages.
	r := <-s.done
	return r.positions, r.err
}
