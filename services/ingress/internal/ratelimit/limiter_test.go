package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apitosms/apitosms/libs/testkit"
)

// Two replicas (two connections) hammering one account share one window:
// exactly the limit is allowed, never more.
func TestLimiterSharedAcrossReplicas(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		var limiters []*Limiter
		for i := 0; i < 2; i++ {
			l, err := Open(ctx, b.Broker(t).JS, b.Names.RateLimitBucket(), 1)
			if err != nil {
				t.Fatal(err)
			}
			limiters = append(limiters, l)
		}
		var allowed, refused atomic.Int64
		var wg sync.WaitGroup
		for g := 0; g < 10; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					d, err := limiters[(g+i)%2].Allow(ctx, 42, 60)
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						allowed.Add(1)
					} else {
						refused.Add(1)
						if d.Reset <= 0 {
							t.Errorf("refused without reset: %+v", d)
						}
					}
				}
			}()
		}
		wg.Wait()
		if allowed.Load() != 60 || refused.Load() != 40 {
			t.Fatalf("allowed %d refused %d, want 60/40", allowed.Load(), refused.Load())
		}
		// Another account has its own window.
		if d, err := limiters[0].Allow(ctx, 43, 60); err != nil || !d.Allowed || d.Remaining != 59 {
			t.Fatalf("other account: %+v %v", d, err)
		}
	})
}

// The read window is its own key: spending it leaves the send window whole,
// and the other way round.
func TestScopesAreSeparateWindows(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		l, err := Open(ctx, b.Broker(t).JS, b.Names.RateLimitBucket(), 1)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if d, err := l.AllowRead(ctx, 7, 3); err != nil || !d.Allowed {
				t.Fatalf("read %d: %+v %v", i, d, err)
			}
		}
		if d, err := l.AllowRead(ctx, 7, 3); err != nil || d.Allowed {
			t.Fatalf("read window over its limit: %+v %v", d, err)
		}
		if d, err := l.Allow(ctx, 7, 3); err != nil || !d.Allowed || d.Remaining != 2 {
			t.Fatalf("send window touched by reads: %+v %v", d, err)
		}
	})
}
