package auth

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/broker"
)

// Throttle counts failed sign-ins per key (an account's email, a client
// address) in a KV bucket shared by every replica. An entry expires Window
// after the last failure counted in it.
type Throttle struct {
	kv     jetstream.KeyValue
	Window time.Duration
}

// OpenThrottle opens (creating if needed) the throttle bucket.
func OpenThrottle(ctx context.Context, js jetstream.JetStream, bucket string, window time.Duration, replicas int) (*Throttle, error) {
	kv, err := broker.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "apitosms console sign-in failures",
		History:     1,
		TTL:         window,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("console throttle bucket: %w", err)
	}
	return &Throttle{kv: kv, Window: window}, nil
}

// ThrottleKey is the bucket key of what (kind "a" account email, "ip"
// address): a digest, so the bucket holds no email or address.
func ThrottleKey(kind, what string) string {
	sum := sha256.Sum256([]byte(what))
	return kind + "." + hex.EncodeToString(sum[:16])
}

// Failures returns the failures counted under key.
func (t *Throttle) Failures(ctx context.Context, key string) (int, error) {
	e, err := t.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(e.Value()) != 8 {
		return 0, nil
	}
	return int(binary.BigEndian.Uint64(e.Value())), nil
}

// Fail counts one more failure under key (compare-and-set: concurrent
// failures on several replicas are all counted).
func (t *Throttle) Fail(ctx context.Context, key string) error {
	for range 20 {
		e, err := t.kv.Get(ctx, key)
		var n uint64
		var rev uint64
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			rev = e.Revision()
			if len(e.Value()) == 8 {
				n = binary.BigEndian.Uint64(e.Value())
			}
		}
		v := binary.BigEndian.AppendUint64(nil, n+1)
		if rev == 0 {
			_, err = t.kv.Create(ctx, key, v)
		} else {
			_, err = t.kv.Update(ctx, key, v, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			var apiErr *jetstream.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
				return err
			}
		}
	}
	return errors.New("throttle: too much contention")
}

// Reset forgets the failures under key (after a successful sign-in).
func (t *Throttle) Reset(ctx context.Context, key string) error {
	if err := t.kv.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	return nil
}
