package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

var benchAt = time.Now()

// benchReport is a report of the message at pos, sent, from one phone.
func benchReport(pos int64) store.Report {
	return store.Report{AccountID: 1, Pos: pos, Status: store.StatusSent, Device: "MyPhone", At: benchAt}
}

// benchFill stores messages 1..total (a multiple of 1000) of account 1,
// new, in inserts of 5000 at most.
func benchFill(b *testing.B, st *store.Store, total int) {
	b.Helper()
	in := st.NewInserter()
	defer in.Close()
	for from := 0; from < total; from += 5000 {
		if _, err := in.Insert(context.Background(), rows(1, int64(from+1), min(5000, total-from))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReports1000 applies 1000 delivery reports per operation to
// messages already handed out (status initiated), as the queue-reported
// consumer does during a drain.
func BenchmarkReports1000(b *testing.B) { benchReports(b, nil) }

// BenchmarkReports1000Untold is BenchmarkReports1000 for an account
// without a webhook: the narrow read (the plain drain's).
func BenchmarkReports1000Untold(b *testing.B) {
	benchReports(b, func(int64) bool { return false })
}

func benchReports(b *testing.B, tell func(int64) bool) {
	b.Helper()
	eachBackend(b, func(b *testing.B, st *store.Store) {
		ctx := context.Background()
		const size = 1000
		total := (b.N + 1) * size
		benchFill(b, st, total)
		for claimed := 0; claimed < total; {
			got, err := st.Claim(ctx, 1, 5000, store.NoBound, time.Now(), store.Confirm{})
			if err != nil || len(got) == 0 {
				b.Fatalf("claim: %d rows, %v", len(got), err)
			}
			claimed += len(got)
		}
		reports := make([]store.Report, size)
		b.ReportAllocs()
		before := testkit.ProcessCPU() // the box is shared: CPU, not the clock, is the figure
		b.ResetTimer()
		for i := range b.N {
			for j := range reports {
				reports[j] = benchReport(int64(i*size + j + 1))
			}
			if _, err := st.RecordReports(ctx, reports, tell); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "reports/s")
		b.ReportMetric(float64((testkit.ProcessCPU()-before).Microseconds())/float64(b.N*size), "cpu-µs/report")
	})
}

// BenchmarkLookup1000 looks up 1000 messages by position per operation
// (one bulk lookup), among 100,000 of two accounts.
func BenchmarkLookup1000(b *testing.B) {
	eachBackend(b, func(b *testing.B, st *store.Store) {
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		const total, size = 100000, 1000
		for from := 0; from < total; from += 5000 {
			if _, err := in.Insert(ctx, rows(int64(1+from/5000%2), int64(from+1), 5000)); err != nil {
				b.Fatal(err)
			}
		}
		positions := make([]int64, size)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			for j := range positions {
				positions[j] = int64((i*7919+j*104729)%total + 1)
			}
			if _, err := st.Lookup(ctx, 1, positions); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "lookups/s")
	})
}

// BenchmarkReports1000Claimed is BenchmarkReports1000 (a told account) for
// messages handed out as get_messages hands them out (confirmed claims of
// 200, acknowledged), read in full ("wide") or with the claims' hand-outs
// remembered ("handouts", RememberHandOuts: the report reads them narrow).
// claim-cpu-µs/row is the claims' CPU per message, in the setup.
func BenchmarkReports1000Claimed(b *testing.B) {
	for _, remember := range []bool{false, true} {
		name := "wide"
		if remember {
			name = "handouts"
		}
		b.Run(name, func(b *testing.B) {
			eachBackend(b, func(b *testing.B, st *store.Store) {
				if remember {
					st.RememberHandOuts(func(int64) bool { return true })
				}
				ctx := context.Background()
				const size = 1000
				total := (b.N + 1) * size
				benchFill(b, st, total)
				g := st.NewClaimGroup(nil)
				defer g.Close()
				claimCPU := testkit.ProcessCPU()
				for claimed := 0; claimed < total; {
					id := store.NewClaimID()
					got, err := g.Claim(ctx, 1, 200, store.NoBound, time.Now(), store.Confirm{ID: id, Expires: time.Now().Add(time.Hour)})
					if err != nil || len(got) == 0 {
						b.Fatalf("claim: %d rows, %v", len(got), err)
					}
					if _, err := g.Ack(ctx, []int64{id}); err != nil {
						b.Fatal(err)
					}
					claimed += len(got)
				}
				claimCPU = testkit.ProcessCPU() - claimCPU
				reports := make([]store.Report, size)
				b.ReportAllocs()
				before := testkit.ProcessCPU()
				b.ResetTimer()
				for i := range b.N {
					for j := range reports {
						reports[j] = benchReport(int64(i*size + j + 1))
					}
					rec, err := g.RecordReports(ctx, reports, nil)
					if err != nil || len(rec.Final) != size {
						b.Fatalf("%d named, %v", len(rec.Final), err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64((testkit.ProcessCPU()-before).Microseconds())/float64(b.N*size), "cpu-µs/report")
				b.ReportMetric(float64(claimCPU.Microseconds())/float64(total), "claim-cpu-µs/row")
			})
		})
	}
}
