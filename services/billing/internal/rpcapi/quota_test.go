package rpcapi

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/billing/internal/domain"
	"github.com/apitosms/apitosms/services/billing/internal/metrics"
	"github.com/apitosms/apitosms/services/billing/internal/store"
)

// A quota event whose publish never happened (a billing process died after
// the reservation committed) is published by the relay, under its id, and
// is then no longer due.
func TestQuotaRelayPublishesDueEvents(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		br := b.Broker(t)
		st := store.New(b.DB(t, store.Service))
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		acc, err := st.CreateAccount(ctx, "n", "a@b", "d"+fmt.Sprint(now.UnixNano()), now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.PutSubscription(ctx, acc.ID, domain.Subscription{Plan: "p", MonthlyLimit: 5, StartedAt: now}); err != nil {
			t.Fatal(err)
		}
		// The reservation commits; its publish "never happens".
		if g, err := st.ReserveBatch(ctx, now, []domain.Reservation{{AccountID: acc.ID, Count: 5}}); err != nil || g[0].Crossed != domain.QuotaWarning|domain.QuotaExhausted {
			t.Fatalf("reserve: %+v, %v", g, err)
		}
		m := metrics.New(prometheus.NewRegistry())
		q := NewQuotaEvents(br.JS, b.Names, st, m, testkit.Logger(t))
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); q.Relay(rctx, 50*time.Millisecond) }()
		defer func() { cancel(); <-done }()
		testkit.Eventually(t, 10*time.Second, "due events published", func() bool {
			due, err := st.DueQuotaEvents(ctx, 10)
			return err == nil && len(due) == 0
		})
		s, err := br.JS.Stream(ctx, b.Names.NotifyStream())
		if err != nil {
			t.Fatal(err)
		}
		msg, err := s.GetLastMsgForSubject(ctx, b.Names.NotifyBatchSubject())
		if err != nil {
			t.Fatal(err)
		}
		var batch events.NotificationBatch
		if err := events.Unmarshal(msg.Data, &batch); err != nil {
			t.Fatal(err)
		}
		month := now.UTC().Format("2006-01")
		want := map[string]bool{
			fmt.Sprintf("quota.warning.%d.%s", acc.ID, month):   true,
			fmt.Sprintf("quota.exhausted.%d.%s", acc.ID, month): true,
		}
		if len(batch.Batch) != 2 || !want[batch.Batch[0].ID] || !want[batch.Batch[1].ID] {
			t.Fatalf("published %+v", batch.Batch)
		}
		if string(batch.Batch[0].Data) != fmt.Sprintf(`{"used":5,"limit":5,"month":%q}`, month) {
			t.Fatalf("data %s", batch.Batch[0].Data)
		}
	})
}
