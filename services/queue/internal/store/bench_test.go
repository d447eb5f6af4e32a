package store_test

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// eachBackend runs a benchmark on SQLite and, when the test URLs are set, on
// PostgreSQL.
func eachBackend(b *testing.B, fn func(b *testing.B, st *store.Store)) {
	b.Helper()
	b.Run("sqlite", func(b *testing.B) {
		st := open(b, testkit.Backend{DataDir: b.TempDir()})
		fn(b, st)
	})
	natsURL, dbURL := os.Getenv(testkit.EnvNATS), os.Getenv(testkit.EnvDatabase)
	if natsURL != "" && dbURL != "" {
		b.Run("postgres", func(b *testing.B) { fn(b, open(b, testkit.External(b, natsURL, dbURL))) })
	}
}

// BenchmarkInsert1000 stores one 1000-item batch (one full AcceptedBatch)
// per operation, in its own transaction.
func BenchmarkInsert1000(b *testing.B) { benchInsert(b, 1000) }

// BenchmarkInsert20000 stores 20000 rows per transaction, as the ingest
// consumer does under load (many events per consumer batch).
func BenchmarkInsert20000(b *testing.B) { benchInsert(b, 20000) }

func benchInsert(b *testing.B, size int) {
	b.Helper()
	eachBackend(b, func(b *testing.B, st *store.Store) {
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		batch := rows(1, 0, size)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			base := int64(i * size)
			for j := range batch {
				batch[j].Pos = base + int64(j)
			}
			if _, err := in.Insert(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "rows/s")
	})
}

// BenchmarkClaim200 claims 200 messages per operation from a queue holding
// more than b.N*200, as get_messages does: the claim is recorded to be
// confirmed, then acknowledged in a transaction of its own (the worst case:
// the service batches acks into claim groups).
func BenchmarkClaim200(b *testing.B) {
	eachBackend(b, func(b *testing.B, st *store.Store) {
		ctx := context.Background()
		in := st.NewInserter()
		const size = 200
		for from := 0; from < (b.N+1)*size; from += 5000 {
			if _, err := in.Insert(ctx, rows(1, int64(from), 5000)); err != nil {
				b.Fatal(err)
			}
		}
		// Another account's messages interleaved in the table.
		if _, err := in.Insert(ctx, rows(2, int64((b.N+1)*size+5000), 5000)); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			id := store.NewClaimID()
			got, err := st.Claim(ctx, 1, size, store.NoBound, time.Now(), store.Confirm{ID: id, Expires: time.Now().Add(time.Minute)})
			if err != nil || len(got) != size {
				b.Fatalf("claimed %d, err %v", len(got), err)
			}
			if n, err := st.Ack(ctx, []int64{id}); err != nil || n != 1 {
				b.Fatalf("acked %d, err %v", n, err)
			}
		}
	})
}

// BenchmarkClaimParallel claims 200 messages per operation from 16
// goroutines at once, as many phones polling do, on one account's queue
// holding more than b.N*200, each claim recorded and then acknowledged as
// get_messages does: "group" through a ClaimGroup (group commit, acks
// joining the claims' transactions), "direct" with Store.Claim and
// Store.Ack (a transaction each).
func BenchmarkClaimParallel(b *testing.B) {
	eachBackend(b, func(b *testing.B, st *store.Store) {
		g := st.NewClaimGroup(nil)
		defer g.Close()
		b.Run("direct", func(b *testing.B) { benchClaimParallel(b, st, st.Claim, st.Ack) })
		b.Run("group", func(b *testing.B) { benchClaimParallel(b, st, g.Claim, g.Ack) })
	})
}

func benchClaimParallel(b *testing.B, st *store.Store,
	claim func(ctx context.Context, accountID int64, limit int, maxPos int64, now time.Time, confirm store.Confirm) ([]store.Claimed, error),
	ack func(ctx context.Context, ids []int64) (int64, error)) {
	b.Helper()
	const size, workers = 200, 16
	ctx := context.Background()
	// A fresh account per run: earlier runs left their messages claimed.
	var account int64
	if err := st.DB().NewRaw("SELECT COALESCE(MAX(account_id), 0) + 1 FROM messages").Scan(ctx, &account); err != nil {
		b.Fatal(err)
	}
	in := st.NewInserter()
	defer in.Close()
	var last int64
	if err := st.DB().NewRaw("SELECT COALESCE(MAX(pos), 0) + 1 FROM messages").Scan(ctx, &last); err != nil {
		b.Fatal(err)
	}
	for from := 0; from < (b.N+1)*size; from += 5000 {
		if _, err := in.Insert(ctx, rows(account, last+int64(from), 5000)); err != nil {
			b.Fatal(err)
		}
	}
	var ops atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for range workers {
		wg.Go(func() {
			for ops.Add(1) <= int64(b.N) {
				id := store.NewClaimID()
				got, err := claim(ctx, account, size, store.NoBound, time.Now(), store.Confirm{ID: id, Expires: time.Now().Add(time.Minute)})
				if err != nil || len(got) != size {
					b.Errorf("claimed %d, err %v", len(got), err)
					return
				}
				if n, err := ack(ctx, []int64{id}); err != nil || n != 1 {
					b.Errorf("acked %d, err %v", n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkApplyReports1000 applies 1000 delivery reports per operation to
// messages handed out under confirmed claims (the common case: a phone
// reports long after its claim was acknowledged), so nothing is written.
func BenchmarkApplyReports1000(b *testing.B) {
	eachBackend(b, func(b *testing.B, st *store.Store) {
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		const size = 1000
		n := (b.N + 1) * size
		for from := 0; from < n; from += 5000 {
			if _, err := in.Insert(ctx, rows(1, int64(from), 5000)); err != nil {
				b.Fatal(err)
			}
		}
		for claimed := 0; claimed < n; claimed += 200 {
			id := store.NewClaimID()
			if _, err := st.Claim(ctx, 1, 200, store.NoBound, time.Now(), store.Confirm{ID: id, Expires: time.Now().Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
			if _, err := st.Ack(ctx, []int64{id}); err != nil {
				b.Fatal(err)
			}
		}
		reports := make([]store.Report, size)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			for j := range reports {
				reports[j] = store.Report{AccountID: 1, Pos: int64(i*size + j), Status: store.StatusSent}
			}
			if _, _, err := st.ApplyReports(ctx, reports); err != nil {
				b.Fatal(err)
			}
		}
	})
}
