package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/console/internal/auth"
)

func TestPassword(t *testing.T) {
	h := auth.HashPassword("correct horse")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if !auth.CheckPassword(h, "correct horse") || auth.CheckPassword(h, "correct horsE") || auth.CheckPassword("junk", "x") {
		t.Fatal("check")
	}
	if h == auth.HashPassword("correct horse") {
		t.Fatal("no salt")
	}
}

// TestSessionsAndThrottle: sessions are found by their cookie only, end one
// by one or all of an account at once; failures count across calls.
func TestSessionsAndThrottle(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		js := b.Broker(t).JS
		s, err := auth.OpenSessions(ctx, js, b.Names.ConsoleSessionsBucket(), time.Hour, 1)
		if err != nil {
			t.Fatal(err)
		}
		c1, err := s.Create(ctx, auth.Session{Kind: auth.Merchant, AccountID: 7})
		if err != nil {
			t.Fatal(err)
		}
		c2, _ := s.Create(ctx, auth.Session{Kind: auth.Merchant, AccountID: 7})
		c3, _ := s.Create(ctx, auth.Session{Kind: auth.Merchant, AccountID: 8})
		op, _ := s.Create(ctx, auth.Session{Kind: auth.Operator})
		if c1 == c2 || !strings.HasPrefix(c1, "m7.") || !strings.HasPrefix(op, "o.") {
			t.Fatalf("cookies %q %q %q", c1, c2, op)
		}
		got, err := s.Get(ctx, c1)
		if err != nil || got.AccountID != 7 || len(got.CSRF) != 43 {
			t.Fatalf("get = %+v %v", got, err)
		}
		// The account id in the cookie is checked against the key: another
		// account's prefix with a valid secret finds nothing.
		if _, err := s.Get(ctx, "m8."+strings.SplitN(c1, ".", 2)[1]); !errors.Is(err, auth.ErrNoSession) {
			t.Fatalf("swapped account: %v", err)
		}
		for _, bad := range []string{"", "m7", "m7.short", "x." + strings.Repeat("A", 43), "m07." + strings.Repeat("A", 43)} {
			if _, err := s.Get(ctx, bad); !errors.Is(err, auth.ErrNoSession) {
				t.Fatalf("cookie %q: %v", bad, err)
			}
		}
		if err := s.DeleteAccount(ctx, 7); err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{c1, c2} {
			if _, err := s.Get(ctx, c); !errors.Is(err, auth.ErrNoSession) {
				t.Fatalf("after sign out everywhere: %v", err)
			}
		}
		for _, c := range []string{c3, op} {
			if _, err := s.Get(ctx, c); err != nil {
				t.Fatalf("other session ended: %v", err)
			}
		}

		th, err := auth.OpenThrottle(ctx, js, b.Names.ConsoleThrottleBucket(), time.Minute, 1)
		if err != nil {
			t.Fatal(err)
		}
		k := auth.ThrottleKey("a", "x@example.com")
		for range 3 {
			if err := th.Fail(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := th.Failures(ctx, k); err != nil || n != 3 {
			t.Fatalf("failures = %d %v", n, err)
		}
		if err := th.Reset(ctx, k); err != nil {
			t.Fatal(err)
		}
		if n, _ := th.Failures(ctx, k); n != 0 {
			t.Fatalf("after reset: %d", n)
		}

		seal, err := auth.LoadSealer(ctx, js, b.Names.KeysBucket(), 1)
		if err != nil {
			t.Fatal(err)
		}
		sealed := seal.Seal(5, "secret-token")
		if strings.Contains(sealed, "secret") {
			t.Fatal("not sealed")
		}
		if v, err := seal.Open(5, sealed); err != nil || v != "secret-token" {
			t.Fatalf("open: %q %v", v, err)
		}
		if _, err := seal.Open(6, sealed); err == nil {
			t.Fatal("another account's sealed token opened")
		}
	})
}
