package keys_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/apitosms/apitosms/libs/keys"
	"github.com/apitosms/apitosms/libs/testkit"
)

func TestSealer(t *testing.T) {
	s, err := keys.NewSealer(bytes.Repeat([]byte{1}, keys.SealerKeySize))
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.Seal("whsec_abc", nil)
	if strings.Contains(sealed, "abc") || sealed == s.Seal("whsec_abc", nil) {
		t.Fatal("sealing must hide the value and use a fresh nonce")
	}
	if got, err := s.Open(sealed, nil); err != nil || got != "whsec_abc" {
		t.Fatalf("open: %q %v", got, err)
	}
	bound := s.Seal("token", []byte("account/7"))
	if _, err := s.Open(bound, []byte("account/8")); !errors.Is(err, keys.ErrSealed) {
		t.Fatalf("opened with another ad: %v", err)
	}
	if got, err := s.Open(bound, []byte("account/7")); err != nil || got != "token" {
		t.Fatalf("open with its ad: %q %v", got, err)
	}
	other, _ := keys.NewSealer(bytes.Repeat([]byte{2}, keys.SealerKeySize))
	if _, err := other.Open(sealed, nil); !errors.Is(err, keys.ErrSealed) {
		t.Fatalf("opened under another key: %v", err)
	}
	for _, bad := range []string{"", "!!", base64.StdEncoding.EncodeToString([]byte("short"))} {
		if _, err := s.Open(bad, nil); !errors.Is(err, keys.ErrSealed) {
			t.Fatalf("opened %q: %v", bad, err)
		}
	}
}

// Concurrent loaders of one key all get the same key; another name is
// another key; a later loader reads what the first stored.
func TestLoadOneKeyForEveryone(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		br := b.Broker(t)
		bucket := b.Names.KeysBucket()
		got := make([][]byte, 8)
		var wg sync.WaitGroup
		for i := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k, err := keys.Load(ctx, br.JS, bucket, "test-key", 32, 1)
				if err != nil {
					t.Error(err)
					return
				}
				got[i] = k
			}()
		}
		wg.Wait()
		for i, k := range got {
			if len(k) != 32 || !bytes.Equal(k, got[0]) {
				t.Fatalf("loader %d: %x, first: %x", i, k, got[0])
			}
		}
		again, err := keys.Load(ctx, br.JS, bucket, "test-key", 32, 1)
		if err != nil || !bytes.Equal(again, got[0]) {
			t.Fatalf("later load: %x %v", again, err)
		}
		other, err := keys.Load(ctx, br.JS, bucket, "other-key", 32, 1)
		if err != nil || bytes.Equal(other, got[0]) {
			t.Fatalf("another name: %x %v", other, err)
		}
		if _, err := keys.Load(ctx, br.JS, bucket, "test-key", 16, 1); err == nil {
			t.Fatal("a key of another size was accepted")
		}
	})
}
