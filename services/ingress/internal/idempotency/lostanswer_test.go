package idempotency

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/testkit"
)

// lossyKV is a real bucket whose writes take effect but, when armed, answer
// as if the answer was lost on the way (a NATS node died with it).
type lossyKV struct {
	jetstream.KeyValue
	lose atomic.Int64
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

// A lease or a completion whose answer was lost is recognised as ours when
// read back: the request keeps its lease (no 409 against itself) and a retry
// replays the stored answer.
func TestLostWriteAnswerIsOurs(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		s, err := Open(ctx, b.Broker(t).JS, b.Names.IdempotencyBucket(), 1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		s.wait = 100 * time.Millisecond
		kv := &lossyKV{KeyValue: s.kv}
		s.kv = kv

		kv.lose.Store(1)
		replay, lease, err := s.Acquire(ctx, 1, "k")
		if err != nil || replay != nil || lease == nil {
			t.Fatalf("acquire with a lost answer: %v %v %v", replay, lease, err)
		}
		kv.lose.Store(1)
		if err := s.Complete(ctx, lease, 200, []byte(`{"ok":true}`)); err != nil {
			t.Fatalf("complete with a lost answer: %v", err)
		}
		replay, lease, err = s.Acquire(ctx, 1, "k")
		if err != nil || lease != nil || replay == nil || replay.Status != 200 || string(replay.Body) != `{"ok":true}` {
			t.Fatalf("retry: %+v %v %v, want the stored answer", replay, lease, err)
		}
	})
}
