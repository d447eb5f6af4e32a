package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/console/internal/store"
)

func open(t *testing.T, b testkit.Backend) *store.Store {
	t.Helper()
	st := store.New(b.DB(t, store.Service))
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestInvites: an invite works once, not after it expires, and a newer one
// replaces an unused older one; of concurrent uses exactly one wins.
func TestInvites(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		now := time.Now().UnixMilli()
		week := now + 7*24*3600*1000

		if err := st.CreateInvite(ctx, "expired", 1, "A@Example.com", now-2000, now-1000); err != nil {
			t.Fatal(err)
		}
		if _, err := st.PeekInvite(ctx, "expired", now); !errors.Is(err, store.ErrInviteInvalid) {
			t.Fatalf("peek expired: %v", err)
		}
		if _, err := st.AcceptInvite(ctx, "expired", "hash", now); !errors.Is(err, store.ErrInviteInvalid) {
			t.Fatalf("accept expired: %v", err)
		}
		if _, err := st.AcceptInvite(ctx, "unknown", "hash", now); !errors.Is(err, store.ErrInviteInvalid) {
			t.Fatalf("accept unknown: %v", err)
		}

		// A newer invite replaces the unused one.
		if err := st.CreateInvite(ctx, "first", 2, "b@example.com", now, week); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateInvite(ctx, "second", 2, "b@example.com", now, week); err != nil {
			t.Fatal(err)
		}
		if _, err := st.PeekInvite(ctx, "first", now); !errors.Is(err, store.ErrInviteInvalid) {
			t.Fatalf("replaced invite still valid: %v", err)
		}

		// Concurrent uses: exactly one sets the password.
		var wg sync.WaitGroup
		wins := make(chan store.Invite, 8)
		for range 8 {
			wg.Go(func() {
				inv, err := st.AcceptInvite(ctx, "second", "hash-x", now)
				if err == nil {
					wins <- inv
				} else if !errors.Is(err, store.ErrInviteInvalid) {
					t.Errorf("accept: %v", err)
				}
			})
		}
		wg.Wait()
		close(wins)
		if len(wins) != 1 {
			t.Fatalf("%d concurrent uses won", len(wins))
		}
		if inv := <-wins; inv.AccountID != 2 || inv.Email != "b@example.com" {
			t.Fatalf("invite = %+v", inv)
		}
		acct, hash, ok, err := st.Credentials(ctx, " B@EXAMPLE.com ")
		if err != nil || !ok || acct != 2 || hash != "hash-x" {
			t.Fatalf("credentials = %d %q %v %v", acct, hash, ok, err)
		}

		// Another account may not take the same email.
		if err := st.CreateInvite(ctx, "third", 3, "b@example.com", now, week); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AcceptInvite(ctx, "third", "h", now); !errors.Is(err, store.ErrEmailTaken) {
			t.Fatalf("email taken: %v", err)
		}
		if _, err := st.PeekInvite(ctx, "third", now); err != nil {
			t.Fatalf("refused invite consumed: %v", err)
		}

		// Sealed tokens.
		if s, err := st.Token(ctx, 2); err != nil || s != "" {
			t.Fatalf("token before: %q %v", s, err)
		}
		for _, v := range []string{"sealed-1", "sealed-2"} {
			if err := st.PutToken(ctx, 2, v, now); err != nil {
				t.Fatal(err)
			}
		}
		if s, err := st.Token(ctx, 2); err != nil || s != "sealed-2" {
			t.Fatalf("token: %q %v", s, err)
		}
	})
}
