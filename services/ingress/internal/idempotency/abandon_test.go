package idempotency

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/ingress/internal/publish"
)

// An abandoned key is taken over at once by the next request, with the
// abandoned request's id; the abandoned lease can no longer complete.
func TestAbandonLetsRetryTakeOver(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		s, err := Open(ctx, b.Broker(t).JS, b.Names.IdempotencyBucket(), 1, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		s.wait = 100 * time.Millisecond // a live holder would answer ErrInProgress
		_, first, err := s.Acquire(ctx, 1, "k")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Abandon(ctx, first); err != nil {
			t.Fatal(err)
		}
		_, next, err := s.Acquire(ctx, 1, "k")
		if err != nil || next == nil {
			t.Fatalf("retry after abandon: %v %v, want the lease at once", next, err)
		}
		if next.RequestID != first.RequestID {
			t.Fatalf("retry after abandon got request id %s, want %s", next.RequestID, first.RequestID)
		}
		if err := s.Complete(ctx, first, 200, []byte(`{}`)); err == nil {
			t.Fatal("abandoned lease completed")
		}
		// The new holder is live: a third request waits, then gives up.
		if _, _, err := s.Acquire(ctx, 1, "k"); !errors.Is(err, ErrInProgress) {
			t.Fatalf("third request while the retry holds the key: %v", err)
		}
	})
}

// lossyJS is a real JetStream whose publishes are stored but, while armed,
// answer as if the acknowledgement was lost (a leader election).
type lossyJS struct {
	jetstream.JetStream
	armed atomic.Bool
}

func (j *lossyJS) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	ack, err := j.JetStream.PublishMsg(ctx, msg, opts...)
	if err == nil && j.armed.Load() {
		return nil, jetstream.ErrNoStreamResponse
	}
	return ack, err
}

// A request whose publish was stored but not acknowledged, abandoned and
// retried under the same key, is stored once: the retry publishes under
// the same ids and gets the first positions back. (Releasing the key
// instead stored the batch twice: the retry's fresh request id escaped the
// stream's deduplication.)
func TestAbandonedPublishStoredOnce(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		br := b.Broker(t)
		s, err := Open(ctx, br.JS, b.Names.IdempotencyBucket(), 1, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		js := &lossyJS{JetStream: br.JS}
		p := publish.New(js, b.Names.AcceptedSubject(), br.Conn.MaxPayload())
		items := []events.AcceptedSMS{
			{AccountID: 1, Phone: "+15550000001", Text: "order 1"},
			{AccountID: 1, Phone: "+15550000002", Text: "order 2"},
		}

		_, lease, err := s.Acquire(ctx, 1, "order-1")
		if err != nil {
			t.Fatal(err)
		}
		js.armed.Store(true)
		if _, err := p.Publish(ctx, lease.RequestID, time.Now(), items, false); err == nil {
			t.Fatal("publish with lost acknowledgements succeeded")
		}
		if err := s.Abandon(ctx, lease); err != nil {
			t.Fatal(err)
		}

		js.armed.Store(false)
		_, retry, err := s.Acquire(ctx, 1, "order-1")
		if err != nil || retry == nil {
			t.Fatalf("retry: %v %v", retry, err)
		}
		positions, err := p.Publish(ctx, retry.RequestID, time.Now(), items, false)
		if err != nil {
			t.Fatal(err)
		}
		state := testkit.StreamState(t, br.JS, b.Names.AcceptedStream())
		if state.Msgs != 1 {
			t.Fatalf("the stream holds %d messages, want the batch once", state.Msgs)
		}
		want := []int64{events.Position(state.FirstSeq, 0), events.Position(state.FirstSeq, 1)}
		if len(positions) != 2 || positions[0] != want[0] || positions[1] != want[1] {
			t.Fatalf("retry got positions %v, want the stored batch's %v", positions, want)
		}
	})
}
