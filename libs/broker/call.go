package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/apperr"
)

// Every call to the broker (a key-value read or compare-and-set, a publish
// waiting for its acknowledgement, a JetStream API request, one attempt of a
// request/reply) is bounded by the call timeout, well below the HTTP request
// timeout: a request in flight when a NATS node dies, or one a JetStream
// cluster leaves unanswered during a leader election, fails after at most
// that long instead of hanging until the whole request gives up. An
// idempotent call is then tried once more (Retry): a fresh attempt, which
// after a reconnection goes through another server of the cluster.

// DefaultCallTimeout bounds one broker call attempt unless configured
// (APITOSMS_BROKER_TIMEOUT).
const DefaultCallTimeout = 2 * time.Second

// retryPause is the wait before the second attempt of an idempotent call: a
// reconnection (ReconnectWait 250 ms) or a leader transfer takes about that.
const retryPause = 200 * time.Millisecond

var callTimeout atomic.Int64 // nanoseconds

func init() { callTimeout.Store(int64(DefaultCallTimeout)) }

// CallTimeout returns the bound of one broker call attempt.
func CallTimeout() time.Duration { return time.Duration(callTimeout.Load()) }

// SetCallTimeout sets the bound of one broker call attempt for the process
// (Open does, from Config.CallTimeout); d ≤ 0 restores the default.
func SetCallTimeout(d time.Duration) {
	if d <= 0 {
		d = DefaultCallTimeout
	}
	callTimeout.Store(int64(d))
}

// Bound returns ctx limited to one broker call attempt.
func Bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, CallTimeout())
}

// Retry runs op, bounded by the call timeout, and runs it once more when it
// failed because the broker was unavailable (apperr.Unavailable) and ctx
// still has time. op must be idempotent: with a lost acknowledgement the
// first attempt may have taken effect (publishes carry a Nats-Msg-Id and
// compare-and-set writes check what is stored, so a retry cannot duplicate).
func Retry(ctx context.Context, op func(ctx context.Context) error) error {
	err := attempt(ctx, op)
	if err == nil || !apperr.Unavailable(err) || ctx.Err() != nil {
		return err
	}
	if !sleep(ctx, retryPause) {
		return err
	}
	return attempt(ctx, op)
}

func attempt(ctx context.Context, op func(ctx context.Context) error) error {
	actx, cancel := Bound(ctx)
	defer cancel()
	return op(actx)
}

// Ensure runs an idempotent administrative operation (create or update a
// stream, a consumer, a bucket; look one up) until it succeeds, ctx ends, or
// it fails for a reason no retry can fix. Each attempt is bounded by the
// call timeout: a JetStream cluster does not answer a request about a stream
// whose creation by another process is still being applied, so without a
// bound every process starting at the same moment but the first would wait
// for its whole start timeout. A concurrent creator's "already in use" or
// "already exists" is retried too: the next attempt updates (or finds) what
// the winner created.
//
// The first attempts are bounded more tightly (250 ms, doubling up to the
// call timeout): such a request normally takes milliseconds, and one left
// unanswered would otherwise cost every process a full call timeout per
// stream and bucket.
func Ensure(ctx context.Context, what string, op func(ctx context.Context) error) error {
	pause := 20 * time.Millisecond
	bound := 250 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, min(bound, CallTimeout()))
		err := op(actx)
		cancel()
		bound *= 2
		if err == nil {
			return nil
		}
		if !apperr.Unavailable(err) && !raced(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		// Jitter spreads processes that started together.
		if !sleep(ctx, pause/2+rand.N(pause)) { //nolint:gosec // G404: jitter, not a secret
			return fmt.Errorf("%s: %w (last attempt: %w)", what, ctx.Err(), err)
		}
		pause = min(2*pause, time.Second)
	}
}

// raced reports an answer meaning another process created the same thing
// at the same moment.
func raced(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamNameInUse, jetstream.JSErrCodeConsumerNameExists,
			jetstream.JSErrCodeConsumerAlreadyExists, jetstream.JSErrCodeConsumerExists:
			return true
		}
	}
	return errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || errors.Is(err, jetstream.ErrBucketExists)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// EnsureStream creates stream cfg or updates it to cfg (see Ensure).
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	var s jetstream.Stream
	err := Ensure(ctx, "ensure stream "+cfg.Name, func(ctx context.Context) (err error) {
		// Create first: a stream that exists with the same configuration
		// (every start but the first) is answered as it is, without the
		// update that an update request would make the server apply while
		// other processes create its consumers (nats-server 2.15 races
		// there). Only another configuration (an upgrade) is updated.
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.UpdateStream(ctx, cfg)
		}
		return err
	})
	return s, err
}

// EnsureConsumer creates the durable consumer cfg on stream or updates it.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	var c jetstream.Consumer
	err := Ensure(ctx, "ensure consumer "+cfg.Durable+" on "+stream, func(ctx context.Context) (err error) {
		c, err = js.CreateOrUpdateConsumer(ctx, stream, cfg)
		return err
	})
	return c, err
}

// EnsureKeyValue creates key-value bucket cfg or updates it.
func EnsureKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := Ensure(ctx, "ensure bucket "+cfg.Bucket, func(ctx context.Context) (err error) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, cfg)
		return err
	})
	return kv, err
}

// EnsureObjectStore creates object store cfg or updates it.
func EnsureObjectStore(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	var obs jetstream.ObjectStore
	err := Ensure(ctx, "ensure object store "+cfg.Bucket, func(ctx context.Context) (err error) {
		obs, err = js.CreateOrUpdateObjectStore(ctx, cfg)
		return err
	})
	return obs, err
}
