package store_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// BenchmarkPhoneFleet is the phone-fleet scenario's queue store: 32 phones
// on 8 accounts each claim 20, acknowledge and hand what they got to one
// reporter, which records whatever has arrived in one call, as the reported
// consumer records a fetched batch. An operation is one poll. "apart"
// records the reports in transactions of their own (Store.RecordReports),
// "shared" through the claim group (on SQLite in the claims' transactions).
// cpu-µs/poll is the process's user+sys CPU per poll, claim-p50-ms and
// claim-p99-ms what a claim waited for its group; "limit200" is the
// drain's poll size, for the cost per message at 10 times fewer polls.
func BenchmarkPhoneFleet(b *testing.B) {
	eachBackend(b, func(b *testing.B, st *store.Store) {
		g := st.NewClaimGroup(nil)
		defer g.Close()
		b.Run("apart", func(b *testing.B) { benchPhoneFleet(b, st, g, 20, st.RecordReports) })
		b.Run("shared", func(b *testing.B) { benchPhoneFleet(b, st, g, 20, g.RecordReports) })
		b.Run("shared-limit200", func(b *testing.B) { benchPhoneFleet(b, st, g, 200, g.RecordReports) })
	})
}

func benchPhoneFleet(b *testing.B, st *store.Store, g *store.ClaimGroup, limit int,
	record func(ctx context.Context, reports []store.Report, tell func(int64) bool) (store.Recorded, error)) {
	b.Helper()
	const phones, accounts = 32, 8
	ctx := context.Background()
	var first int64 // fresh accounts per run: earlier runs left theirs claimed
	if err := st.DB().NewRaw("SELECT COALESCE(MAX(account_id), 0) + 1 FROM messages").Scan(ctx, &first); err != nil {
		b.Fatal(err)
	}
	var last int64
	if err := st.DB().NewRaw("SELECT COALESCE(MAX(pos), 0) + 1 FROM messages").Scan(ctx, &last); err != nil {
		b.Fatal(err)
	}
	in := st.NewInserter()
	defer in.Close()
	per := (b.N/accounts + phones + 1) * limit
	for a := range int64(accounts) {
		for from := 0; from < per; from += 5000 {
			if _, err := in.Insert(ctx, rows(first+a, last+int64(from), min(5000, per-from))); err != nil {
				b.Fatal(err)
			}
		}
		last += int64(per)
	}
	reports := make(chan []store.Report, phones)
	var reported sync.WaitGroup
	reported.Go(func() {
		var batch []store.Report
		for r := range reports {
			batch = append(batch[:0], r...)
			for more := true; more; {
				select {
				case r, ok := <-reports:
					if !ok {
						more = false
						break
					}
					batch = append(batch, r...)
				default:
					more = false
				}
			}
			// No account has a webhook (the fleet's): the narrow read.
			if _, err := record(ctx, batch, func(int64) bool { return false }); err != nil {
				b.Error(err)
			}
		}
	})
	var ops atomic.Int64
	var phonesDone sync.WaitGroup
	waits := make([][]time.Duration, phones) // each claim's wait, per phone
	before := testkit.ProcessCPU()
	b.ResetTimer()
	for p := range phones {
		phonesDone.Go(func() {
			account := first + int64(p%accounts)
			for ops.Add(1) <= int64(b.N) {
				now := time.Now()
				id := store.NewClaimID()
				got, err := g.Claim(ctx, account, limit, store.NoBound, now, store.Confirm{ID: id, Expires: now.Add(time.Minute)})
				waits[p] = append(waits[p], time.Since(now))
				if err != nil || len(got) != limit {
					b.Errorf("claimed %d, err %v", len(got), err)
					return
				}
				if _, err := g.Ack(ctx, []int64{id}); err != nil {
					b.Error(err)
					return
				}
				r := make([]store.Report, len(got))
				for i, m := range got {
					r[i] = store.Report{AccountID: account, Pos: m.Pos, Status: store.StatusSent, Device: "phone", At: now}
				}
				reports <- r
			}
		})
	}
	phonesDone.Wait()
	close(reports)
	reported.Wait()
	b.StopTimer()
	cpu := float64((testkit.ProcessCPU() - before).Microseconds())
	b.ReportMetric(cpu/float64(b.N), "cpu-µs/poll")
	b.ReportMetric(cpu/float64(b.N*limit), "cpu-µs/msg")
	var all []time.Duration
	for _, w := range waits {
		all = append(all, w...)
	}
	if len(all) > 0 {
		slices.Sort(all)
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "claim-p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "claim-p99-ms")
	}
}
