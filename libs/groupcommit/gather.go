package groupcommit

import (
	"slices"
	"sync"
)

// Gatherer hands items to a function in groups: each of its loops takes the
// items waiting, in arrival order, as many as take allows (at least one),
// and passes them to handle; the items that arrive while handle runs wait
// and go together in the next group. An idle gatherer adds no delay: an
// item that finds a loop free is handled at once, alone.
//
// It is the shape of every group commit here: the billing calls ingress
// makes for concurrent reservations, the accepted-stream publishes of small
// requests, the reported-stream publishes of status requests that commit
// together. Batcher is the same for callers that wait for their job's
// outcome in the call.
type Gatherer[T any] struct {
	take   func(waiting []T) int
	handle func(group []T)

	mu      sync.Mutex
	cond    *sync.Cond
	waiting []T
	started bool
	closed  bool
	wg      sync.WaitGroup
}

// NewGatherer returns a gatherer; Start starts its loops. take, if not nil,
// says how many of the waiting items (never none) the next group takes:
// fewer than one counts as one, more than are waiting as all of them; nil
// takes all. handle gets each group; it owns the slice.
func NewGatherer[T any](take func(waiting []T) int, handle func(group []T)) *Gatherer[T] {
	g := &Gatherer[T]{take: take, handle: handle}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// Start starts loops more loops (at least one): that many groups may be
// handled at once. Items handed over before wait for it.
func (g *Gatherer[T]) Start(loops int) {
	g.mu.Lock()
	g.started = true
	g.mu.Unlock()
	for range max(loops, 1) {
		g.wg.Go(g.loop)
	}
}

// Add hands items over, together and in order, behind those waiting. It
// reports false, and hands over none, once Close has begun.
func (g *Gatherer[T]) Add(items ...T) bool {
	if len(items) == 0 {
		return true
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.waiting = append(g.waiting, items...)
	g.mu.Unlock()
	g.cond.Signal()
	return true
}

// Waiting returns how many items wait for a loop.
func (g *Gatherer[T]) Waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.waiting)
}

// Close lets the loops handle every item handed over (starting one if
// Start was never called), stops them and returns once they have.
func (g *Gatherer[T]) Close() {
	g.mu.Lock()
	g.closed = true
	started := g.started
	g.mu.Unlock()
	if !started {
		g.Start(1)
	}
	g.cond.Broadcast()
	g.wg.Wait()
}

func (g *Gatherer[T]) loop() {
	for {
		group := g.next()
		if group == nil {
			return
		}
		g.handle(group)
	}
}

// next waits for items and takes the next group; nil once closed and empty.
func (g *Gatherer[T]) next() []T {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.waiting) == 0 {
		if g.closed {
			return nil
		}
		g.cond.Wait()
	}
	n := len(g.waiting)
	if g.take != nil {
		n = min(max(g.take(g.waiting), 1), n)
	}
	group := slices.Clone(g.waiting[:n])
	g.waiting = slices.Delete(g.waiting, 0, n) // keeps no taken item reachable
	if len(g.waiting) > 0 {
		g.cond.Signal() // another loop may take the rest
	}
	return group
}
