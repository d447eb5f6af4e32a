package ratelimit

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/testkit"
)

// BenchmarkUpdate is one window write (a compare-and-set of one key, as
// every request's) on the embedded NATS server: through nats.go's Update
// (its acknowledgement decoded with encoding/json) and directly (directKV).
func BenchmarkUpdate(b *testing.B) {
	for _, tc := range []struct {
		name string
		kv   func(l *Limiter) jetstream.KeyValue
	}{
		{"nats.go", func(l *Limiter) jetstream.KeyValue { return l.kv.(*directKV).KeyValue }},
		{"direct", func(l *Limiter) jetstream.KeyValue { return l.kv }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			be := testkit.Embedded(b)
			ctx := context.Background()
			l, err := Open(ctx, be.Broker(b).JS, be.Names.RateLimitBucket(), 1)
			if err != nil {
				b.Fatal(err)
			}
			kv := tc.kv(l)
			value := make([]byte, 120)
			rev, err := kv.Create(ctx, "1", value)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if rev, err = kv.Update(ctx, "1", value, rev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
