package idempotency

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
)

func TestAcquireCompleteReplay(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		s, err := Open(ctx, b.Broker(t).JS, b.Names.IdempotencyBucket(), 1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		s.wait = 100 * time.Millisecond
		replay, lease, err := s.Acquire(ctx, 1, "order-17")
		if err != nil || replay != nil || lease == nil {
			t.Fatalf("first acquire: %v %v %v", replay, lease, err)
		}
		// Same key, other account: independent.
		if r, l, err := s.Acquire(ctx, 2, "order-17"); err != nil || r != nil || l == nil {
			t.Fatalf("other account: %v %v %v", r, l, err)
		}
		// While held by a live request, a retry waits, then reports in progress.
		waits := make(chan struct{}, 1)
		s.waiting = func() {
			select {
			case waits <- struct{}{}:
			default:
			}
		}
		if _, _, err := s.Acquire(ctx, 1, "order-17"); !errors.Is(err, ErrInProgress) {
			t.Fatalf("retry while held: %v", err)
		}
		select {
		case <-waits:
		default:
			t.Fatal("retry while held: ErrInProgress without waiting for the holder")
		}
		// A retry waiting while the first completes gets its response:
		// Complete comes once the retry is seen waiting.
		done := make(chan *Replay)
		s.wait = time.Minute
		go func() {
			r, _, err := s.Acquire(ctx, 1, "order-17")
			if err != nil {
				t.Error(err)
			}
			done <- r
		}()
		<-waits
		if err := s.Complete(ctx, lease, 200, []byte(`{"ok":true}`)); err != nil {
			t.Fatal(err)
		}
		if r := <-done; r == nil || r.Status != 200 || string(r.Body) != `{"ok":true}` {
			t.Fatalf("waiting retry got %+v", r)
		}
	})
}

func TestTakeoverKeepsRequestID(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		s, err := Open(ctx, b.Broker(t).JS, b.Names.IdempotencyBucket(), 1, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		_, dead, err := s.Acquire(ctx, 1, "k")
		if err != nil {
			t.Fatal(err)
		}
		// The holder "died": its lease ran out (the clock moves on, no
		// sleep).
		s.now = func() time.Time { return time.Now().Add(time.Second) }
		_, lease, err := s.Acquire(ctx, 1, "k")
		if err != nil || lease == nil {
			t.Fatalf("takeover: %v", err)
		}
		if lease.RequestID != dead.RequestID {
			t.Fatalf("takeover changed request id: %s vs %s", lease.RequestID, dead.RequestID)
		}
		// The dead holder can no longer complete.
		if err := s.Complete(ctx, dead, 200, []byte(`{}`)); err == nil {
			t.Fatal("stale lease completed")
		}
		if err := s.Complete(ctx, lease, 200, []byte(`{"queued":1}`)); err != nil {
			t.Fatal(err)
		}
		replay, l, err := s.Acquire(ctx, 1, "k")
		if err != nil || l != nil || replay == nil || replay.Status != 200 || string(replay.Body) != `{"queued":1}` {
			t.Fatalf("replay: %+v %v %v", replay, l, err)
		}
	})
}

func TestReleaseLetsRetryProceed(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		s, err := Open(ctx, b.Broker(t).JS, b.Names.IdempotencyBucket(), 1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		_, lease, err := s.Acquire(ctx, 1, "k")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Release(ctx, lease); err != nil {
			t.Fatal(err)
		}
		_, lease2, err := s.Acquire(ctx, 1, "k")
		if err != nil || lease2 == nil || lease2.RequestID == lease.RequestID {
			t.Fatalf("after release: %+v %v", lease2, err)
		}
	})
}

func TestValidKey(t *testing.T) {
	for k, want := range map[string]bool{"a": true, "order-1 retry": true, "": false, "tab\there": false, "é": false,
		string(make([]byte, 256)): false} {
		if ValidKey(k) != want {
			t.Errorf("ValidKey(%q) = %v", k, !want)
		}
	}
}
