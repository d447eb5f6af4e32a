package status_test

import (
	"context"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// Messages accepted with a later sendAt keep their rows in
// deliveries_later, apart from the due ones; reports settle them as any
// other (alone, or in one request with due messages), a report repeating a
// final status is a conflict, and unknown positions stay unknown.
func TestScheduledRowsApart(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h := start(t, b)
		const account = 12
		later := time.Now().Add(time.Hour).UnixMilli()
		items := make([]events.AcceptedSMS, 6)
		for i := range items {
			items[i] = events.AcceptedSMS{AccountID: account, Phone: "+10000000000", Text: "hello"}
			if i%2 == 1 {
				items[i].SendAt = later
			}
		}
		seq := h.publish(t, items...)
		pos := make([]int64, len(items))
		for i := range pos {
			pos[i] = events.Position(seq, i)
		}
		h.waitStored(t, pos...)
		var apart int
		if err := h.db.NewRaw("SELECT COUNT(*) FROM deliveries_later WHERE pos >= ? AND pos <= ?", pos[0], pos[5]).Scan(context.Background(), &apart); err != nil || apart != 3 {
			t.Fatalf("rows in deliveries_later = %d, %v; want 3", apart, err)
		}
		// A scheduled message alone, then due and scheduled ones together.
		rep := h.mustApply(t, events.ApplyRequest{AccountID: account, Device: "a", Reports: []events.ApplyReport{{Index: 0, Pos: pos[1], Status: 2}}})
		if rep.Updated != 1 || len(rep.Errors) != 0 {
			t.Fatalf("scheduled alone: %+v", rep)
		}
		var reports []events.ApplyReport
		for i, p := range append(pos, unknownPos) {
			reports = append(reports, events.ApplyReport{Index: i, Pos: p, Status: 3})
		}
		rep = h.mustApply(t, events.ApplyRequest{AccountID: account, Device: "a", Reports: reports})
		if rep.Updated != 5 || len(rep.Errors) != 2 {
			t.Fatalf("mixed request: %+v; want 5 updated, 2 errors (already final, unknown)", rep)
		}
		for i, p := range pos {
			want := 3
			if i == 1 {
				want = 2
			}
			if got := h.statusOf(t, p); got != want {
				t.Errorf("message %d status %d, want %d", i, got, want)
			}
		}
	})
}
