package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/testkit"
)

// A configuration the server refuses (three replicas on one server) fails
// at once instead of being retried until the start timeout.
func TestEnsureFailsFastOnARefusal(t *testing.T) {
	b := testkit.Embedded(t).Broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := broker.EnsureStream(ctx, b.JS, jetstream.StreamConfig{
		Name: testkit.Namespace() + "_R3", Subjects: []string{testkit.Namespace() + ".r3"}, Replicas: 3,
	})
	if err == nil {
		t.Fatal("an R3 stream was created on one server")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("refusal took %v: %v", took, err)
	}
}

// Retry makes an idempotent call twice at most: once more only after an
// unavailable dependency, never after another error, and never past ctx.
func TestRetry(t *testing.T) {
	ctx := context.Background()
	calls := 0
	err := broker.Retry(ctx, func(context.Context) error {
		calls++
		if calls == 1 {
			return nats.ErrNoResponders
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Errorf("after no responders: err %v, %d calls; want success on the second", err, calls)
	}
	calls = 0
	err = broker.Retry(ctx, func(context.Context) error { calls++; return jetstream.ErrKeyExists })
	if !errors.Is(err, jetstream.ErrKeyExists) || calls != 1 {
		t.Errorf("a conflict was retried: err %v, %d calls", err, calls)
	}
	calls = 0
	err = broker.Retry(ctx, func(context.Context) error { calls++; return jetstream.ErrNoStreamResponse })
	if !apperr.Unavailable(err) || calls != 2 {
		t.Errorf("persistent unavailability: err %v, %d calls; want 2 calls and the error", err, calls)
	}

	broker.SetCallTimeout(100 * time.Millisecond)
	t.Cleanup(func() { broker.SetCallTimeout(0) })
	start := time.Now()
	err = broker.Retry(ctx, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stuck call: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("two bounded attempts of 100 ms took %v", took)
	}
}
