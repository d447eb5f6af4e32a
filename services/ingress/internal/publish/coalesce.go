package publish

import (
	"context"
	"fmt"
	"time"

	"github.com/apitosms/apitosms/libs/apperr"
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
// they wait.
func (p *Publisher) Run(ctx context.Context, n int) {
	p.shared.Start(n)
	<-ctx.Done()
	p.shared.Close()
}

// takeShared says how many waiting requests one stream message carries: at
// least one, and more while their items stay under the event's bound.
func takeShared(waiting []shared) int {
	items, n := len(waiting[0].items), 1
	for ; n < len(waiting) && items < events.MaxItemsPerEvent-SharedMax; n++ {
		items += len(waiting[n].items)
	}
	return n
}

// publishGroup publishes the items of a group of requests as one request
// (under a fresh request id) and gives each its positions.
func (p *Publisher) publishGroup(group []shared) {
	n := 0
	for _, g := range group {
		n += len(g.items)
	}
	items := make([]events.AcceptedSMS, 0, n)
	for _, g := range group {
		items = append(items, g.items...)
	}
	positions, err := p.publish(context.Background(), NewRequestID(), time.Now().UTC(), items)
	for _, g := range group {
		r := sharedResult{err: err}
		if err == nil {
			r.positions, positions = positions[:len(g.items):len(g.items)], positions[len(g.items):]
		}
		g.done <- r
	}
}

// publishShared hands a small request to the coalescer and waits for its items
// to be acknowledged.
func (p *Publisher) publishShared(ctx context.Context, items []events.AcceptedSMS) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := shared{items: items, done: make(chan sharedResult, 1)}
	if !p.shared.Add(s) {
		return nil, fmt.Errorf("publish: %w: shutting down", apperr.ErrUnavailable)
	}
	// Once handed over, the items may be published: wait for the outcome even
	// if the caller gives up, so a 503 is never sent for stored messages.
	r := <-s.done
	return r.positions, r.err
}
