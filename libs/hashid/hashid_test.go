package hashid_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/hashid"
	"github.com/apitosms/apitosms/libs/testkit"
)

func codec(t testing.TB) *hashid.Codec {
	t.Helper()
	c, err := hashid.New([]byte("0123456789abcdefghijklmn"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTripAndShape(t *testing.T) {
	t.Parallel()
	c := codec(t)
	seen := map[string]bool{}
	for seq := uint64(1); seq <= 200; seq++ {
		for _, idx := range []int{0, 1, 511, 1023} {
			pos := events.Position(seq, idx)
			h := c.Hash(pos)
			if len(h) != hashid.Len {
				t.Fatalf("Hash(%d) = %q, want %d characters", pos, h, hashid.Len)
			}
			for _, r := range h {
				if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
					t.Fatalf("Hash(%d) = %q: not lower-case hex", pos, h)
				}
			}
			if seen[h] {
				t.Fatalf("Hash(%d) = %q repeats", pos, h)
			}
			seen[h] = true
			if got, ok := c.Pos(h); !ok || got != pos {
				t.Fatalf("Pos(Hash(%d)) = %d, %v", pos, got, ok)
			}
		}
	}
	// Neighbouring positions give unrelated hashes.
	if a, b := c.Hash(1024), c.Hash(1025); a[:8] == b[:8] {
		t.Errorf("hashes of neighbours share a prefix: %s %s", a, b)
	}
}

func TestPosRejectsNonCanonical(t *testing.T) {
	t.Parallel()
	c := codec(t)
	h := c.Hash(events.Position(7, 3))
	for _, bad := range []string{"", h[:15], h + "0", "A1B2C3D4E5F67890", "g1b2c3d4e5f67890", " " + h[1:]} {
		if pos, ok := c.Pos(bad); ok {
			t.Errorf("Pos(%q) = %d, true; want false", bad, pos)
		}
	}
	upper := []byte(h)
	for i, b := range upper {
		if 'a' <= b && b <= 'f' {
			upper[i] = b - 'a' + 'A'
			if _, ok := c.Pos(string(upper)); ok {
				t.Errorf("Pos accepted upper-case %q", upper)
			}
			break
		}
	}
}

func TestNewChecksKeySize(t *testing.T) {
	t.Parallel()
	if _, err := hashid.New(make([]byte, 16)); err == nil {
		t.Error("New accepted a 16-byte key")
	}
}

// Every replica of every service ends up with the same key, however many
// start at once, and it survives a reconnect.
func TestLoadSharesOneKey(t *testing.T) {
	t.Parallel()
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		br := b.Broker(t)
		js := make([]jetstream.JetStream, 8)
		for i := range js {
			js[i] = br.JS
		}
		loadConcurrently(t, js, b.Names.KeysBucket(), 1)
	})
}

// The same on a three-node cluster, the key replicated on all three and each
// process on its own connection: one key wins, and a read from a replica
// that has not seen it yet is read again rather than failing or creating
// another.
func TestLoadSharesOneKeyInACluster(t *testing.T) {
	t.Parallel()
	c := testkit.StartCluster(t, 3)
	js := make([]jetstream.JetStream, 6)
	for i := range js {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		br, err := broker.Open(ctx, broker.Config{URL: c.URLs()[i%3], Name: "hashid"}, testkit.Logger(t))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(br.Close)
		js[i] = br.JS
	}
	loadConcurrently(t, js, events.NewNames(testkit.Namespace()).KeysBucket(), 3)
}

func loadConcurrently(t *testing.T, js []jetstream.JetStream, bucket string, replicas int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := len(js)
	codecs := make([]*hashid.Codec, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			codecs[i], errs[i] = hashid.Load(ctx, js[i], bucket, replicas)
		}()
	}
	close(gate)
	wg.Wait()
	pos := events.Position(42, 7)
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Load #%d: %v", i, errs[i])
		}
		if codecs[i].Hash(pos) != codecs[0].Hash(pos) {
			t.Fatalf("Load #%d got another key", i)
		}
	}
	again, err := hashid.Load(ctx, js[n-1], bucket, replicas)
	if err != nil || again.Hash(pos) != codecs[0].Hash(pos) {
		t.Fatalf("Load after the first: %v, same key %v", err, err == nil && again.Hash(pos) == codecs[0].Hash(pos))
	}
}

func BenchmarkHash(b *testing.B) {
	c := codec(b)
	pos := events.Position(1, 0)
	for b.Loop() {
		pos++
		_ = c.Hash(pos)
	}
}

func BenchmarkPos(b *testing.B) {
	c := codec(b)
	h := c.Hash(events.Position(99, 9))
	for b.Loop() {
		if _, ok := c.Pos(h); !ok {
			b.Fatal("Pos failed")
		}
	}
}
