package ratelimit

import (
	"context"
	"fmt"
	"sync"

	"github.com/apitosms/apitosms/libs/broker"
)

// keyState is one window key on this replica: whether a round (one
// compare-and-set deciding a group of requests) is running for it, the
// requests waiting for the next round, and the window the last round wrote.
type keyState struct {
	mu      sync.Mutex
	running bool
	waiting []*waiter

	// Read and written only by the running round.
	value []byte
	rev   uint64
}

type waiter struct {
	limit int
	done  chan result // buffered: a waiter that gave up never blocks a round
}

type result struct {
	d   Decision
	err error
}

// allow takes one request from key's window. With no round running for key
// the request runs its own (the caller's goroutine, the caller's context:
// no hand-off on an idle key). Otherwise it waits for the next round, which
// decides every request that arrived meanwhile with one compare-and-set.
func (l *Limiter) allow(ctx context.Context, key string, limit int) (Decision, error) {
	ks := l.key(key)
	ks.mu.Lock()
	if !ks.running {
		ks.running = true
		ks.mu.Unlock()
		ds, err := l.decide(ctx, ks, key, []int{limit})
		l.after(ks, key)
		if err != nil {
			return Decision{}, err
		}
		return ds[0], nil
	}
	w := &waiter{limit: limit, done: make(chan result, 1)}
	ks.waiting = append(ks.waiting, w)
	ks.mu.Unlock()
	if l.waited != nil {
		l.waited()
	}
	select {
	case r := <-w.done:
		return r.d, r.err
	case <-ctx.Done():
		// The round may still count this request (as a write whose answer
		// was lost may): the client got no answer and retries.
		return Decision{}, fmt.Errorf("rate limit: %w", ctx.Err())
	}
}

func (l *Limiter) key(key string) *keyState {
	if v, ok := l.keys.Load(key); ok {
		return v.(*keyState)
	}
	v, _ := l.keys.LoadOrStore(key, &keyState{})
	return v.(*keyState)
}

// after ends a round run by a request: requests that arrived meanwhile get
// rounds of their own goroutine, or the key goes idle.
func (l *Limiter) after(ks *keyState, key string) {
	ks.mu.Lock()
	if len(ks.waiting) == 0 {
		ks.running = false
		ks.mu.Unlock()
		return
	}
	ks.mu.Unlock()
	go l.rounds(ks, key)
}

// rounds runs one round per group of waiting requests until none is left.
// Its operations are bounded as a request's are (each bucket operation by
// the broker call timeout, a round's retries by that timeout too), not by
// any one waiter's context: a waiter that gives up does not fail the others.
func (l *Limiter) rounds(ks *keyState, key string) {
	for {
		ks.mu.Lock()
		batch := ks.waiting
		ks.waiting = nil
		if len(batch) == 0 {
			ks.running = false
			ks.mu.Unlock()
			return
		}
		ks.mu.Unlock()
		limits := make([]int, len(batch))
		for i, w := range batch {
			limits[i] = w.limit
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*broker.CallTimeout())
		ds, err := l.decide(ctx, ks, key, limits)
		cancel()
		for i, w := range batch {
			if err != nil {
				w.done <- result{err: err}
			} else {
				w.done <- result{d: ds[i]}
			}
		}
	}
}

// forget drops the cached window of key (tests: the next round reads the
// bucket).
func (l *Limiter) forget(key string) {
	ks := l.key(key)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if !ks.running {
		ks.value, ks.rev = nil, 0
	}
}
