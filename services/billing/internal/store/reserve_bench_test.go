package store

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/billing/internal/domain"
)

// BenchmarkReserveBatch16: one group commit of 16 one-message reservations
// over 16 accounts (what 64 clients sending one message per request make
// billing do), per op.
func BenchmarkReserveBatch16(b *testing.B) {
	run := func(b *testing.B, be testkit.Backend) {
		b.Helper()
		ctx := context.Background()
		st := New(be.DB(b, Service))
		if err := st.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		batch := make([]domain.Reservation, 16)
		for i := range batch {
			acc, err := st.CreateAccount(ctx, "n", "a@b", digestFor(b), now)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.PutSubscription(ctx, acc.ID, domain.Subscription{Plan: "p", MonthlyLimit: 1 << 40, StartedAt: now}); err != nil {
				b.Fatal(err)
			}
			batch[i] = domain.Reservation{AccountID: acc.ID, Count: 1}
		}
		b.ResetTimer()
		for b.Loop() {
			if _, err := st.ReserveBatch(ctx, now, batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("sqlite", func(b *testing.B) { run(b, testkit.Embedded(b)) })
	if nats, db := os.Getenv(testkit.EnvNATS), os.Getenv(testkit.EnvDatabase); nats != "" && db != "" {
		b.Run("postgres", func(b *testing.B) { run(b, testkit.External(b, nats, db)) })
	}
}
