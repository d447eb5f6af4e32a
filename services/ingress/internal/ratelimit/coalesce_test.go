package ratelimit

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/testkit"
)

// gatedKV is a real bucket that counts writes and, when armed, holds the
// next write until the test opens the gate.
type gatedKV struct {
	jetstream.KeyValue
	writes  atomic.Int64
	armed   atomic.Bool
	entered chan struct{}
	gate    chan struct{}
}

func (k *gatedKV) hold() {
	k.writes.Add(1)
	if k.armed.CompareAndSwap(true, false) {
		k.entered <- struct{}{}
		<-k.gate
	}
}

func (k *gatedKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	k.hold()
	return k.KeyValue.Create(ctx, key, value, opts...)
}

func (k *gatedKV) Update(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	k.hold()
	return k.KeyValue.Update(ctx, key, value, last)
}

// Requests of one account that arrive while its window is being written
// are decided together and written with one compare-and-set, each getting
// its own decision: exactly the limit is allowed, with the remaining counts
// of requests taken one after another.
func TestWaitingRequestsShareOneWrite(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		l, err := Open(ctx, b.Broker(t).JS, b.Names.RateLimitBucket(), 1)
		if err != nil {
			t.Fatal(err)
		}
		kv := &gatedKV{KeyValue: l.kv, entered: make(chan struct{}), gate: make(chan struct{})}
		l.kv = kv
		const limit, waiting = 15, 20
		joined := make(chan struct{}, waiting)
		l.waited = func() { joined <- struct{}{} }

		kv.armed.Store(true)
		first := make(chan result, 1)
		go func() {
			d, err := l.Allow(ctx, 9, limit)
			first <- result{d: d, err: err}
		}()
		<-kv.entered // the first request's write is in flight
		results := make(chan result, waiting)
		var wg sync.WaitGroup
		for range waiting {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := l.Allow(ctx, 9, limit)
				results <- result{d: d, err: err}
			}()
		}
		for range waiting {
			<-joined
		}
		close(kv.gate)
		wg.Wait()
		close(results)

		r := <-first
		if r.err != nil || !r.d.Allowed || r.d.Remaining != limit-1 {
			t.Fatalf("first request: %+v %v", r.d, r.err)
		}
		var remaining []int
		refused := 0
		for r := range results {
			switch {
			case r.err != nil:
				t.Fatal(r.err)
			case r.d.Allowed:
				remaining = append(remaining, r.d.Remaining)
			default:
				refused++
				if r.d.Reset <= 0 {
					t.Errorf("refused without reset: %+v", r.d)
				}
			}
		}
		if len(remaining) != limit-1 || refused != waiting-(limit-1) {
			t.Fatalf("allowed %d refused %d of the waiting, want %d/%d", len(remaining), refused, limit-1, waiting-(limit-1))
		}
		sort.Ints(remaining)
		for i, n := range remaining {
			if n != i {
				t.Fatalf("remaining counts %v, want 0..%d once each", remaining, limit-2)
			}
		}
		if got := kv.writes.Load(); got != 2 {
			t.Fatalf("%d window writes for %d requests, want 2 (the first, then one for all that waited)", got, waiting+1)
		}
		// The next request finds the window full, from the cache or the bucket.
		if d, err := l.Allow(ctx, 9, limit); err != nil || d.Allowed {
			t.Fatalf("over the limit: %+v %v", d, err)
		}
	})
}
