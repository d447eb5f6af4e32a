// Package idempotency remembers the response to a queue request sent with an
// Idempotency-Key, for 24 hours, in a NATS key-value bucket every ingress
// replica shares, so a retry returns the first response and queues nothing new.
//
// A request first takes a lease on its key. If its process dies before the
// response is stored, a retry takes the lease over once it expired and reuses
// the lease's request id: message hashes and publish ids derive from it, so
// whatever the dead process already published is deduplicated by the stream
// instead of queued twice.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/services/ingress/internal/publish"
)

// TTL is how long a key is remembered.
const TTL = 24 * time.Hour

// ErrInvalidKey answers a malformed Idempotency-Key.
var ErrInvalidKey = apperr.New(http.StatusBadRequest, "invalid_idempotency_key",
	"Idempotency-Key must be 1-255 printable characters")

// ErrInProgress answers a retry that arrives while the first request still runs.
var ErrInProgress = apperr.New(http.StatusConflict, "idempotency_in_progress",
	"A request with this Idempotency-Key is still being processed; retry shortly")

// ValidKey reports whether k is 1-255 printable ASCII characters.
func ValidKey(k string) bool {
	if len(k) < 1 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// record is what the bucket holds for a key.
type record struct {
	State      string          `json:"state"` // "pending" or "done"
	RequestID  string          `json:"requestId"`
	LeaseUntil time.Time       `json:"leaseUntil,omitzero"`
	Status     int             `json:"status,omitempty"`
	Body       json.RawMessage `json:"body,omitempty"`
}

// Store is the shared memory of keys.
type Store struct {
	kv    jetstream.KeyValue
	lease time.Duration
	wait  time.Duration
	// now is the clock leases are written and judged by (time.Now; tests
	// move it forward instead of sleeping a lease away).
	now func() time.Time
	// waiting, when set (tests only), is called each time Acquire waits
	// for a live holder of the key.
	waiting func()
}

// Open creates or opens the bucket (file storage: a remembered response
// survives restarts).
func Open(ctx context.Context, js jetstream.JetStream, bucket string, replicas int, lease time.Duration) (*Store, error) {
	kv, err := broker.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:   bucket,
		History:  1,
		TTL:      TTL,
		Storage:  jetstream.FileStorage,
		Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("idempotency bucket: %w", err)
	}
	return &Store{kv: kv, lease: lease, wait: min(lease, 5*time.Second), now: time.Now}, nil
}

// Lease is held by the request that processes a key.
type Lease struct {
	key       string
	rev       uint64
	RequestID string // stable across a takeover: derive hashes and publish ids from it
}

// Replay is a stored response.
type Replay struct {
	Status int
	Body   []byte
}

// Acquire returns either a Replay of the first response, or a Lease that
// makes the caller the one processing the key. While another live request
// holds the key, it waits for it up to the lease time, then gives up with
// ErrInProgress.
func (s *Store) Acquire(ctx context.Context, account int64, key string) (*Replay, *Lease, error) {
	k := storageKey(account, key)
	deadline := time.Now().Add(s.wait)
	pause := 5 * time.Millisecond
	for {
		rec := record{State: "pending", RequestID: publish.NewRequestID(), LeaseUntil: s.now().Add(s.lease)}
		rev, err := s.put(ctx, k, mustJSON(rec), 0)
		if err == nil {
			return nil, &Lease{key: k, rev: rev, RequestID: rec.RequestID}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, nil, fmt.Errorf("idempotency create: %w", err)
		}
		entry, err := s.get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released meanwhile: try to create again
		}
		if err != nil {
			return nil, nil, fmt.Errorf("idempotency read: %w", err)
		}
		var cur record
		if err := json.Unmarshal(entry.Value(), &cur); err != nil {
			return nil, nil, fmt.Errorf("idempotency record: %w", err)
		}
		if cur.State == "done" {
			return &Replay{Status: cur.Status, Body: cur.Body}, nil, nil
		}
		if s.now().After(cur.LeaseUntil) {
			// The holder died: take over with its request id.
			next := record{State: "pending", RequestID: cur.RequestID, LeaseUntil: s.now().Add(s.lease)}
			rev, err := s.put(ctx, k, mustJSON(next), entry.Revision())
			if err == nil {
				return nil, &Lease{key: k, rev: rev, RequestID: next.RequestID}, nil
			}
			if apperr.Unavailable(err) {
				return nil, nil, fmt.Errorf("idempotency takeover: %w", err)
			}
			continue // someone else took it over first
		}
		if time.Now().After(deadline) {
			return nil, nil, ErrInProgress
		}
		if s.waiting != nil {
			s.waiting()
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(pause*2, 100*time.Millisecond)
	}
}

// Complete stores the response of the leased key.
func (s *Store) Complete(ctx context.Context, l *Lease, status int, body []byte) error {
	rec := record{State: "done", RequestID: l.RequestID, Status: status, Body: body}
	if _, err := s.put(ctx, l.key, mustJSON(rec), l.rev); err != nil {
		return fmt.Errorf("idempotency complete: %w", err)
	}
	return nil
}

// Abandon gives the leased key up without forgetting its request id: the
// request failed after publishing began, so some of it may be stored (a
// publish whose acknowledgement was lost to a leader election). A retry
// takes the key over at once, as from a dead holder, and publishes under the
// same ids, which the stream deduplicates (within its duplicate window,
// events' two minutes): the messages are stored once, where a fresh request
// id would store them twice. If Abandon fails the key stays leased, and a
// retry takes it over the same way once the lease ran out.
func (s *Store) Abandon(ctx context.Context, l *Lease) error {
	// LeaseUntil is now: already over for the next Acquire, and unique
	// (put's read-back tells our write by its value).
	rec := record{State: "pending", RequestID: l.RequestID, LeaseUntil: s.now()}
	if _, err := s.put(ctx, l.key, mustJSON(rec), l.rev); err != nil {
		return fmt.Errorf("idempotency abandon: %w", err)
	}
	return nil
}

// Release forgets the leased key, so a retry is processed afresh (used when
// the request failed before anything was queued).
func (s *Store) Release(ctx context.Context, l *Lease) error {
	err := broker.Retry(ctx, func(ctx context.Context) error {
		err := s.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev))
		if err != nil && apperr.Unavailable(err) {
			// The answer may be lost: done if the key no longer holds
			// our lease.
			if entry, rerr := s.kv.Get(ctx, l.key); errors.Is(rerr, jetstream.ErrKeyNotFound) ||
				(rerr == nil && entry.Revision() != l.rev) {
				return nil
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("idempotency release: %w", err)
	}
	return nil
}

func (s *Store) get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	var entry jetstream.KeyValueEntry
	err := broker.Retry(ctx, func(ctx context.Context) (err error) {
		entry, err = s.kv.Get(ctx, key)
		return err
	})
	return entry, err
}

// errConflict is a compare-and-set that lost, found by reading back.
var errConflict = errors.New("idempotency record changed meanwhile")

// put writes value over revision rev (0: the key must not exist yet) and
// returns the new revision, each attempt bounded by the broker call timeout.
// When an answer is lost (a node died, a leader election) the write may have
// landed: the record is read back, and since every record written is
// unique (a fresh request id or lease time), holding exactly value means it
// did. If the key is unchanged the write is tried once more; if another
// request changed it, put reports a conflict (jetstream.ErrKeyExists for a
// create).
func (s *Store) put(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	var err error
	for range 2 {
		var newRev uint64
		wctx, cancel := broker.Bound(ctx)
		if rev == 0 {
			newRev, err = s.kv.Create(wctx, key, value)
		} else {
			newRev, err = s.kv.Update(wctx, key, value, rev)
		}
		cancel()
		if err == nil || !apperr.Unavailable(err) || ctx.Err() != nil {
			return newRev, err
		}
		entry, rerr := s.get(ctx, key)
		switch {
		case rerr == nil && bytes.Equal(entry.Value(), value):
			return entry.Revision(), nil // it landed
		case rerr == nil && rev == 0:
			return 0, jetstream.ErrKeyExists
		case rerr == nil && entry.Revision() != rev, errors.Is(rerr, jetstream.ErrKeyNotFound) && rev != 0:
			return 0, errConflict
		case rerr != nil && !errors.Is(rerr, jetstream.ErrKeyNotFound):
			return 0, err // still unavailable
		}
		// Unchanged: the write did not land; once more.
	}
	return 0, err
}

// storageKey never contains the client's key verbatim.
func storageKey(account int64, key string) string {
	sum := sha256.Sum256([]byte(strconv.FormatInt(account, 10) + "\x00" + key))
	return hex.EncodeToString(sum[:20])
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
