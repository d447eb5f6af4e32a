package ratelimit

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/testkit"
)

// lossyKV is a real bucket whose writes take effect but, when armed, answer
// as if the answer was lost on the way (a NATS node died with it).
type lossyKV struct {
	jetstream.KeyValue
	lose atomic.Int64 // writes still to lose the answer of
}

func (k *lossyKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	rev, err := k.KeyValue.Create(ctx, key, value, opts...)
	if err == nil && k.lose.Add(-1) >= 0 {
		return 0, jetstream.ErrNoStreamResponse
	}
	return rev, err
}

func (k *lossyKV) Update(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	rev, err := k.KeyValue.Update(ctx, key, value, last)
	if err == nil && k.lose.Add(-1) >= 0 {
		return 0, context.DeadlineExceeded
	}
	return rev, err
}

// A window write whose answer was lost is read back, not made again: the
// request is counted once, so exactly the limit is allowed.
func TestLostWriteAnswerCountsOnce(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		l, err := Open(ctx, b.Broker(t).JS, b.Names.RateLimitBucket(), 1)
		if err != nil {
			t.Fatal(err)
		}
		kv := &lossyKV{KeyValue: l.kv}
		l.kv = kv
		const limit = 5
		allowed := 0
		for i := range limit + 3 {
			kv.lose.Store(1) // every write's answer is lost (the create's too)
			l.forget("7")
			d, err := l.Allow(ctx, 7, limit)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if d.Allowed {
				allowed++
			}
		}
		if allowed != limit {
			t.Fatalf("%d requests allowed with a limit of %d: a lost answer was counted twice or not at all", allowed, limit)
		}
	})
}
