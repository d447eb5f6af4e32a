package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// BenchmarkDueChain runs the chain a due message goes through, 200 at a
// time: a confirmed claim, its ack and the 200 delivery reports. The due
// messages are the same in each variant; between two of them (pos order)
// sit "scheduled" rows whose sendAt is a day ahead: none, one (half the
// table scheduled, as the make bench rows) or twenty (a large backlog:
// about 1 M rows at -benchtime=250x). Compare ns/op against scheduled=0.
func BenchmarkDueChain(b *testing.B) {
	for _, k := range []struct {
		name string
		per  int // scheduled rows after each due one
	}{{"scheduled=0", 0}, {"scheduled=1x", 1}, {"scheduled=20x", 20}} {
		b.Run(k.name, func(b *testing.B) {
			eachBackend(b, func(b *testing.B, st *store.Store) { benchDueChain(b, st, k.per) })
		})
	}
}

func benchDueChain(b *testing.B, st *store.Store, per int) {
	b.Helper()
	const size = 200
	ctx := context.Background()
	in := st.NewInserter()
	defer in.Close()
	due := (b.N + 1) * size
	sendAt := time.Now().Add(24 * time.Hour).UnixMilli()
	batch := make([]store.NewMessage, 0, 5000)
	flush := func() {
		if _, err := in.Insert(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	now := time.Now()
	for i := range due {
		pos := int64(i*(per+1) + 1)
		batch = append(batch, store.NewMessage{Pos: pos, AccountID: 1, Phone: "+15550000000", Text: "hello", AcceptedAt: now})
		for j := range per {
			batch = append(batch, store.NewMessage{Pos: pos + int64(j) + 1, AccountID: 1, Phone: "+15550000000",
				Text: "hello", AcceptedAt: now, SendAt: sendAt})
		}
		if len(batch) >= 5000 {
			flush()
		}
	}
	flush()
	reports := make([]store.Report, size)
	cpu0 := testkit.ProcessCPU()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		id := store.NewClaimID()
		at := time.Now()
		got, err := st.Claim(ctx, 1, size, store.NoBound, at, store.Confirm{ID: id, Expires: at.Add(time.Minute)})
		if err != nil || len(got) != size {
			b.Fatalf("claimed %d, err %v", len(got), err)
		}
		if n, err := st.Ack(ctx, []int64{id}); err != nil || n != 1 {
			b.Fatalf("acked %d, err %v", n, err)
		}
		for j, m := range got {
			reports[j] = store.Report{AccountID: 1, Pos: m.Pos, Status: store.StatusSent, Device: "bench", At: at}
		}
		if changed, _, err := st.ApplyReports(ctx, reports); err != nil || changed != size {
			b.Fatalf("reports changed %d, err %v", changed, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/sms")
	b.ReportMetric(float64(testkit.ProcessCPU()-cpu0)/float64(b.N*size), "cpu-ns/sms")
}
