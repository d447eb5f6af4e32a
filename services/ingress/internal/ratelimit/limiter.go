package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Limiter keeps windows in a key-value bucket shared by all replicas.
type Limiter struct {
	kv  jetstream.KeyValue
	now func() time.Time
	// last holds the window and revision this replica last wrote per key
	// (string -> seen), so the usual request needs one round trip (the
	// compare-and-set) instead of two. A stale entry only ever lacks other
	// replicas' requests: a refusal read from it is right, an admission is
	// confirmed by the compare-and-set.
	last sync.Map
}

type seen struct {
	value []byte
	rev   uint64
}

// Open creates or opens the bucket. Windows are kept in memory storage: a
// broker restart forgets them, which at worst lets a burst through again.
func Open(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*Limiter, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   bucket,
		History:  1,
		TTL:      2 * Window,
		Storage:  jetstream.MemoryStorage,
		Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("rate limit bucket: %w", err)
	}
	return &Limiter{kv: kv, now: time.Now}, nil
}

const maxAttempts = 50

// Allow takes one request from account's window if it fits under limit.
func (l *Limiter) Allow(ctx context.Context, account int64, limit int) (Decision, error) {
	return l.AllowScope(ctx, "", account, limit)
}

// AllowScope is Allow on a separate window of the account named by scope
// ("" is the send window of contract §1; "read" the read window of Part 2).
// Each scope is its own key in the bucket, so one never spends the other.
func (l *Limiter) AllowScope(ctx context.Context, scope string, account int64, limit int) (Decision, error) {
	if limit < 1 {
		limit = 1
	}
	key := strconv.FormatInt(account, 10)
	if scope != "" {
		key = scope + "." + key
	}
	cached, haveCache := l.last.Load(key)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		var value []byte
		var rev uint64
		if haveCache {
			value, rev = cached.(seen).value, cached.(seen).rev
			haveCache = false // on conflict, read the bucket
		} else {
			entry, err := l.kv.Get(ctx, key)
			switch {
			case err == nil:
				value, rev = entry.Value(), entry.Revision()
			case errors.Is(err, jetstream.ErrKeyNotFound):
			default:
				return Decision{}, fmt.Errorf("rate limit read: %w", err)
			}
		}
		st, err := decode(value)
		if err != nil {
			st = state{} // a corrupt window is reset rather than locking the account out
		}
		d := st.take(l.now(), limit)
		if !d.Allowed {
			return d, nil
		}
		next := st.encode()
		var newRev uint64
		if rev == 0 {
			newRev, err = l.kv.Create(ctx, key, next)
		} else {
			newRev, err = l.kv.Update(ctx, key, next, rev)
		}
		if err == nil {
			l.last.Store(key, seen{value: next, rev: newRev})
			return d, nil
		}
		if !isConflict(err) {
			return Decision{}, fmt.Errorf("rate limit write: %w", err)
		}
		// Another replica (or an expired key) moved the window: read it again.
		if attempt > 0 {
			time.Sleep(time.Duration(rand.IntN(200*attempt)) * time.Microsecond)
		}
	}
	return Decision{}, errors.New("rate limit: too much contention")
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return true
	}
	return errors.Is(err, jetstream.ErrKeyExists)
}
