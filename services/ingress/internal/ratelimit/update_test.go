package ratelimit

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/testkit"
)

// The direct compare-and-set answers as nats.go's Update does: the new
// revision on success, a conflict (and ErrKeyRevisionMismatch) on a stale
// revision, and it writes what a Get reads back.
func TestDirectUpdateMatchesBucket(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		l, err := Open(ctx, b.Broker(t).JS, b.Names.RateLimitBucket(), 1)
		if err != nil {
			t.Fatal(err)
		}
		kv, ok := l.kv.(*directKV)
		if !ok {
			t.Fatalf("the limiter's bucket is %T, not the direct one", l.kv)
		}
		rev, err := kv.Create(ctx, "42", []byte("a"))
		if err != nil {
			t.Fatal(err)
		}
		next, err := kv.Update(ctx, "42", []byte("b"), rev)
		if err != nil {
			t.Fatal(err)
		}
		entry, err := kv.Get(ctx, "42")
		if err != nil {
			t.Fatal(err)
		}
		if entry.Revision() != next || string(entry.Value()) != "b" {
			t.Fatalf("update answered revision %d, the bucket holds %q at %d", next, entry.Value(), entry.Revision())
		}
		_, err = kv.Update(ctx, "42", []byte("c"), rev) // stale
		if !isConflict(err) || !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			t.Fatalf("stale update: %v, want a revision conflict", err)
		}
		if entry, err = kv.Get(ctx, "42"); err != nil || string(entry.Value()) != "b" {
			t.Fatalf("after the stale update the bucket holds %q (%v)", entry.Value(), err)
		}
	})
}

func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		data     string
		seq      uint64
		conflict bool
		err      bool
	}{
		{data: `{"stream":"KV_x","seq":7}`, seq: 7},
		{data: `{"stream":"KV_x","domain":"hub","seq":123456789}`, seq: 123456789},
		{data: `{"stream":"KV_x","seq":9,"duplicate":true}`, seq: 9},
		{data: `{"stream":"KV_x","seq":9 }`, seq: 9}, // not the server's shape: decoded fully
		{data: `{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"KV_x","seq":0}`, conflict: true, err: true},
		{data: `{"error":{"code":400,"err_code":10164,"description":"wrong last sequence"}}`, conflict: true, err: true},
		{data: `{"error":{"code":503,"err_code":10008,"description":"jetstream temporarily unavailable"}}`, err: true},
		{data: `{"stream":"","seq":4}`, err: true},
		{data: `not json`, err: true},
	} {
		seq, err := parseAck([]byte(tc.data))
		if (err != nil) != tc.err || isConflict(err) != tc.conflict || seq != tc.seq {
			t.Errorf("%s: %d, %v; want %d, error %v, conflict %v", tc.data, seq, err, tc.seq, tc.err, tc.conflict)
		}
	}
}
