package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// 32 concurrent claimers on one account drain 5000 messages: every message
// is handed out exactly once, each batch oldest first and within its limit,
// and on SQLite claims shared transactions.
func TestClaimGroupConcurrent(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		const total, claimers = 5000, 32
		in := st.NewInserter()
		defer in.Close()
		if _, err := in.Insert(ctx, rows(1, 1, total)); err != nil {
			t.Fatal(err)
		}
		// Another account's messages are never handed out to account 1.
		if _, err := in.Insert(ctx, rows(2, total+1, 100)); err != nil {
			t.Fatal(err)
		}
		size := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "group_size", Help: "Claims per group.", Buckets: []float64{1}})
		g := st.NewClaimGroup(size)
		defer g.Close()

		got := make([][][]store.Claimed, claimers)
		var wg sync.WaitGroup
		for c := range claimers {
			wg.Go(func() {
				limit := 1 + c*3
				for {
					batch, err := g.Claim(ctx, 1, limit, store.NoBound, time.Now(), store.Confirm{})
					if err != nil {
						t.Errorf("claimer %d: %v", c, err)
						return
					}
					if len(batch) == 0 {
						return
					}
					if len(batch) > limit {
						t.Errorf("claimer %d got %d messages, limit %d", c, len(batch), limit)
					}
					got[c] = append(got[c], batch)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		seen := make(map[int64]int, total)
		for c, batches := range got {
			for _, batch := range batches {
				for i, m := range batch {
					seen[m.Pos]++
					if m.Pos < 1 || m.Pos > total {
						t.Fatalf("claimer %d got position %d of another account", c, m.Pos)
					}
					if i > 0 && batch[i-1].Pos >= m.Pos {
						t.Fatalf("claimer %d got a batch out of order: %d before %d", c, batch[i-1].Pos, m.Pos)
					}
				}
			}
		}
		if len(seen) != total {
			t.Fatalf("%d distinct messages handed out, want %d", len(seen), total)
		}
		for pos, n := range seen {
			if n != 1 {
				t.Fatalf("message %d handed out %d times", pos, n)
			}
		}
		if b.DatabaseURL != "" {
			return // PostgreSQL claims run directly
		}
		var m dto.Metric
		if err := size.Write(&m); err != nil {
			t.Fatal(err)
		}
		h := m.GetHistogram()
		single := h.GetBucket()[0].GetCumulativeCount() // groups of one claim
		if h.GetSampleCount() == single {
			t.Fatalf("all %d transactions held one claim; want some groups of several", single)
		}
		t.Logf("%d transactions for %.0f claims", h.GetSampleCount(), h.GetSampleSum())
	})
}

// Phones of four accounts poll, acknowledge and report what they got, all
// through one claim group (on SQLite reports then share the claims'
// transactions): every message is handed out once and its report recorded
// once, a redelivered report records nothing again, the backlog counts stay
// exact, and nothing reported is handed out again.
func TestClaimGroupReports(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		const accounts, per, phones = 4, 600, 16
		in := st.NewInserter()
		defer in.Close()
		for a := range int64(accounts) {
			if _, err := in.Insert(ctx, rows(a+1, 1+a*per, per)); err != nil {
				t.Fatal(err)
			}
		}
		size := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "group_size", Help: "Jobs per group.", Buckets: []float64{1}})
		g := st.NewClaimGroup(size)
		defer g.Close()

		var mu sync.Mutex
		seen := make(map[int64]int, accounts*per)
		var recorded, sent int64
		var wg sync.WaitGroup
		for p := range phones {
			wg.Go(func() {
				account := int64(1 + p%accounts)
				for {
					now := time.Now()
					confirm := store.Confirm{ID: store.NewClaimID(), Expires: now.Add(time.Hour)}
					got, err := g.Claim(ctx, account, 20, store.NoBound, now, confirm)
					if err != nil {
						t.Errorf("phone %d: claim: %v", p, err)
						return
					}
					if len(got) == 0 {
						return
					}
					if _, err := g.Ack(ctx, []int64{confirm.ID}); err != nil {
						t.Errorf("phone %d: ack: %v", p, err)
						return
					}
					reports := make([]store.Report, len(got))
					for i, m := range got {
						reports[i] = store.Report{AccountID: account, Pos: m.Pos, Status: store.StatusSent, Device: "phone", At: now}
					}
					rec, err := g.RecordReports(ctx, reports, nil)
					if err != nil {
						t.Errorf("phone %d: report: %v", p, err)
						return
					}
					// A redelivery of the same reports records nothing.
					again, err := g.RecordReports(ctx, reports, nil)
					if err != nil {
						t.Errorf("phone %d: report again: %v", p, err)
						return
					}
					if again.Changed != 0 || again.Sent != 0 {
						t.Errorf("phone %d: a repeated report changed %d (sent %d)", p, again.Changed, again.Sent)
					}
					mu.Lock()
					for _, m := range got {
						seen[m.Pos]++
					}
					recorded += rec.Changed
					sent += rec.Sent
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if len(seen) != accounts*per {
			t.Fatalf("%d distinct messages handed out, want %d", len(seen), accounts*per)
		}
		for pos, n := range seen {
			if n != 1 {
				t.Fatalf("message %d handed out %d times", pos, n)
			}
		}
		if recorded != accounts*per || sent != accounts*per {
			t.Fatalf("reports recorded %d outcomes (%d sent), want %d", recorded, sent, accounts*per)
		}
		if bl := checkCounts(t, st, "after the phones"); bl.Waiting != 0 || bl.Initiated != 0 {
			t.Fatalf("backlog %d waiting, %d initiated after every message was reported", bl.Waiting, bl.Initiated)
		}
		// Claims past their confirm time are swept back; reported ones never.
		if sw, err := st.Sweep(ctx, time.Now().Add(2*time.Hour), 100000); err != nil || sw.Requeued != 0 {
			t.Fatalf("sweep after the reports: %d requeued, %v", sw.Requeued, err)
		}
		for a := range int64(accounts) {
			if got, err := g.Claim(ctx, a+1, 20, store.NoBound, time.Now(), store.Confirm{}); err != nil || len(got) != 0 {
				t.Fatalf("account %d: a claim after every report got %d messages, %v", a+1, len(got), err)
			}
		}
		if b.DatabaseURL != "" {
			return // PostgreSQL reports run in their own transactions
		}
		var m dto.Metric
		if err := size.Write(&m); err != nil {
			t.Fatal(err)
		}
		h := m.GetHistogram()
		if single := h.GetBucket()[0].GetCumulativeCount(); h.GetSampleCount() == single {
			t.Fatalf("all %d transactions held one job; want claims, acks and reports sharing some", single)
		}
		t.Logf("%d transactions for %.0f jobs", h.GetSampleCount(), h.GetSampleSum())
	})
}
