package ratelimit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/broker"
)

// Limiter keeps windows in a key-value bucket shared by all replicas.
//
// Concurrent requests of one window on this replica share its writes: while
// one compare-and-set of a key is in flight, the requests that arrive for
// that key wait, and the next round decides all of them on one read window
// and writes the result with one compare-and-set (coalesce.go). The window
// stays exact across replicas: a round whose compare-and-set loses to
// another replica decides all its requests again from what is stored.
type Limiter struct {
	kv  jetstream.KeyValue
	now func() time.Time
	// keys holds one *keyState per window key this replica has used
	// (string -> *keyState): its waiting requests, and the window and
	// revision this replica last wrote, so the usual round needs one round
	// trip (the compare-and-set) instead of two. A stale cached window only
	// ever lacks other replicas' requests: a refusal read from it is right,
	// an admission is confirmed by the compare-and-set.
	keys sync.Map
	// waited, when set (tests), is called after a request joined the
	// requests waiting for a key's next round.
	waited func()
}

// Open creates or opens the bucket. Windows are kept in memory storage: a
// broker restart forgets them, which at worst lets a burst through again.
func Open(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*Limiter, error) {
	kv, err := broker.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:   bucket,
		History:  1,
		TTL:      2 * Window,
		Storage:  jetstream.MemoryStorage,
		Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("rate limit bucket: %w", err)
	}
	return &Limiter{kv: newDirectKV(kv, js.Conn()), now: time.Now}, nil
}

// Compare-and-set conflicts are retried for up to the broker call timeout
// (never fewer than minAttempts times), with a growing random pause: other
// replicas taking the same window, or, during a rolling restart of the
// cluster, a replica that serves reads while it catches up.
const minAttempts = 50

// Allow takes one request from account's window if it fits under limit.
// Every bucket operation is bounded by the broker call timeout; a read is
// retried once, and a write whose answer was lost is read back (see write).
// An error wrapping an unavailable broker means the request was not counted
// or its count is unknown: the caller answers 503.
func (l *Limiter) Allow(ctx context.Context, account int64, limit int) (Decision, error) {
	return l.allow(ctx, strconv.FormatInt(account, 10), limit)
}

// AllowRead takes one request from account's read window (contract Part 2:
// the tracking endpoints), a window of its own kept in the same bucket under
// the key prefix "read.", so reads never spend the sending budget.
func (l *Limiter) AllowRead(ctx context.Context, account int64, limit int) (Decision, error) {
	return l.allow(ctx, "read."+strconv.FormatInt(account, 10), limit)
}

// decide runs one round for key: it decides every request of batch, in
// order, on the window (the cached one first, then what the bucket holds
// after a conflict) and stores the result with one compare-and-set. It
// returns one decision per request, or the error every request of the
// round gets. Only one round per key runs at a time (coalesce.go), so the
// cached window is read and written by one goroutine at a time.
func (l *Limiter) decide(ctx context.Context, ks *keyState, key string, limits []int) ([]Decision, error) {
	haveCache := ks.rev != 0 || ks.value != nil
	giveUp := time.Now().Add(broker.CallTimeout())
	out := make([]Decision, len(limits))
	for attempt := 0; attempt < minAttempts || time.Now().Before(giveUp); attempt++ {
		var value []byte
		var rev uint64
		if haveCache {
			value, rev = ks.value, ks.rev
			haveCache = false // on conflict, read the bucket
		} else {
			entry, err := l.get(ctx, key)
			switch {
			case err == nil:
				value, rev = entry.Value(), entry.Revision()
			case errors.Is(err, jetstream.ErrKeyNotFound):
			default:
				return nil, fmt.Errorf("rate limit read: %w", err)
			}
		}
		st, err := decode(value)
		if err != nil {
			st = state{} // a corrupt window is reset rather than locking the account out
		}
		now := l.now()
		anyAllowed := false
		for i, limit := range limits {
			out[i] = st.take(now, max(limit, 1))
			anyAllowed = anyAllowed || out[i].Allowed
		}
		if !anyAllowed {
			return out, nil
		}
		next := st.encode()
		newRev, err := l.write(ctx, key, next, rev)
		if err == nil {
			ks.value, ks.rev = next, newRev
			return out, nil
		}
		if !isConflict(err) {
			return nil, fmt.Errorf("rate limit write: %w", err)
		}
		// Another replica (or an expired key) moved the window: read it again.
		if attempt > 0 {
			pause := time.Duration(rand.IntN(min(200*attempt, 50_000))) * time.Microsecond //nolint:gosec // G404: jitter, not a secret
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("rate limit: %w", ctx.Err())
			case <-time.After(pause):
			}
		}
	}
	// Not a bug: the window could not be changed in time. The requests are
	// not counted; the clients retry after Retry-After.
	return nil, fmt.Errorf("rate limit: too much contention: %w", apperr.ErrUnavailable)
}

func (l *Limiter) get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	var entry jetstream.KeyValueEntry
	err := broker.Retry(ctx, func(ctx context.Context) (err error) {
		entry, err = l.kv.Get(ctx, key)
		return err
	})
	return entry, err
}

// errLostWrite is a write that did not land, found by reading back after its
// answer was lost: Allow treats it as a conflict (reads and tries again).
var errLostWrite = errors.New("rate limit write lost")

// write stores next over revision rev (0: the key must not exist) and
// returns the new revision. When the answer does not come (a node died, a
// leader election), the write may or may not have landed: the window is read
// back, and if it holds exactly next the write counts as done; otherwise
// Allow tries again from what is stored. (Another replica writing the very
// same bytes in the same millisecond would be taken for ours: one request
// under-counted, only on this path.)
func (l *Limiter) write(ctx context.Context, key string, next []byte, rev uint64) (uint64, error) {
	var newRev uint64
	wctx, cancel := broker.Bound(ctx)
	var err error
	if rev == 0 {
		newRev, err = l.kv.Create(wctx, key, next)
	} else {
		newRev, err = l.kv.Update(wctx, key, next, rev)
	}
	cancel()
	if err == nil || !apperr.Unavailable(err) || ctx.Err() != nil {
		return newRev, err
	}
	entry, rerr := l.get(ctx, key)
	switch {
	case rerr == nil && bytes.Equal(entry.Value(), next):
		return entry.Revision(), nil
	case rerr == nil || errors.Is(rerr, jetstream.ErrKeyNotFound):
		return 0, errLostWrite
	}
	return 0, fmt.Errorf("%w (read back: %w)", err, rerr)
}

func isConflict(err error) bool {
	if errors.Is(err, errLostWrite) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return true
	}
	return errors.Is(err, jetstream.ErrKeyExists)
}
