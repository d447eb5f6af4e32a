package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Limiter keeps windows in a key-value bucket shared by all replicas.
type Limiter struct {
	kv  jetstream.KeyValue
	now func() time.Time
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
	if limit < 1 {
		limit = 1
	}
	key := strconv.FormatInt(account, 10)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		var st state
		var rev uint64
		entry, err := l.kv.Get(ctx, key)
		switch {
		case err == nil:
			rev = entry.Revision()
			if st, err = decode(entry.Value()); err != nil {
				st = state{} // a corrupt window is reset rather than locking the account out
			}
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			return Decision{}, fmt.Errorf("rate limit read: %w", err)
		}
		d := st.take(l.now(), limit)
		if !d.Allowed {
			return d, nil
		}
		if rev == 0 {
			_, err = l.kv.Create(ctx, key, st.encode())
		} else {
			_, err = l.kv.Update(ctx, key, st.encode(), rev)
		}
		if err == nil {
			return d, nil
		}
		if !isConflict(err) {
			return Decision{}, fmt.Errorf("rate limit write: %w", err)
		}
		// Another replica moved the window first: read it again.
		time.Sleep(time.Duration(rand.IntN(200*(attempt+1))) * time.Microsecond)
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
