package status_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/status/internal/store"
)

// TestMarkFinalBothStatuses: one MarkFinal sets sent on the sent positions
// and failed on the failed ones, with the device and time, returns exactly
// the positions it changed, and leaves alone a message already final,
// another account's message and an unknown position.
func TestMarkFinalBothStatuses(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		st := migratedStore(t, b)
		const account, other = 5, 6
		rows := []store.Row{{Pos: 10, AccountID: account}, {Pos: 11, AccountID: account}, {Pos: 12, AccountID: account},
			{Pos: 13, AccountID: account}, {Pos: 14, AccountID: other}}
		if err := st.Ingest(ctx, rows); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 12, 2, 10, 0, 0, 123000, time.UTC)
		mark := func(sent, failed []int64, device string) []int64 {
			t.Helper()
			var changed []int64
			err := st.InTx(ctx, func(ctx context.Context, q *store.Queries) error {
				var err error
				changed, err = q.MarkFinal(ctx, account, sent, failed, device, at)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(changed)
			return changed
		}
		if got := mark(nil, []int64{13}, "first"); !slices.Equal(got, []int64{13}) {
			t.Fatalf("changed %v, want [13]", got)
		}
		// 13 is final already, 14 is another account's, 99 unknown.
		got := mark([]int64{12, 10, 13, 99}, []int64{11, 14}, "Pixel")
		if !slices.Equal(got, []int64{10, 11, 12}) {
			t.Fatalf("changed %v, want [10 11 12]", got)
		}
		want := map[int64]store.Delivery{
			10: {Status: 2, Device: "Pixel"}, 11: {Status: 3, Device: "Pixel"}, 12: {Status: 2, Device: "Pixel"},
			13: {Status: 3, Device: "first"}, 14: {Status: 0},
		}
		for pos, w := range want {
			d, err := st.Get(ctx, pos)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != w.Status || d.Device != w.Device || (w.Status != 0) != d.ReportedAt.Equal(at) {
				t.Errorf("pos %d: status %d device %q reported %v, want status %d device %q at %v",
					pos, d.Status, d.Device, d.ReportedAt, w.Status, w.Device, w.Status != 0)
			}
		}
		if got := mark([]int64{10}, []int64{11}, "again"); len(got) != 0 {
			t.Fatalf("changed %v again, want none", got)
		}
	})
}
