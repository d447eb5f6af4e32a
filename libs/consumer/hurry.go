package consumer

import (
	"context"
	"sync"
)

// Hurry links a reader waiting on a consumer (CatchUp) with the batches that
// consumer gathers in the same process. A batch with a Window holds its
// messages until the window ends, which is right for throughput and wrong
// for a reader that needs them stored now: each time a waiting reader polls
// the consumer and finds it short, it asks, and the batch being gathered
// stops gathering and commits what it holds. Readers in other processes
// cannot reach it; they wait at most the Window more.
//
// The zero value is ready; a nil *Hurry asks nothing and never hurries.
type Hurry struct {
	mu     sync.Mutex
	ctx    context.Context // cancelled by the next Ask
	cancel context.CancelFunc
}

// Ask ends the gathering of the batch in hand, if one is being gathered.
func (h *Hurry) Ask() {
	if h == nil {
		return
	}
	h.mu.Lock()
	if h.cancel != nil {
		h.cancel()
		h.ctx, h.cancel = nil, nil
	}
	h.mu.Unlock()
}

// asked is done once Ask is called after it returned (never, for nil).
func (h *Hurry) asked() context.Context {
	if h == nil {
		return context.Background()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx == nil {
		h.ctx, h.cancel = context.WithCancel(context.Background())
	}
	return h.ctx
}
