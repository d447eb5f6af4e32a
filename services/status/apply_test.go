package status_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// TestApplyRules walks the rules of contract §4 in sequence: each step sees
// the state the previous ones left.
func TestApplyRules(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h := start(t, b)
		const account, other = 7, 8
		hs := h.accept(t, account, 5)
		a, bb, c, d, e := hs[0], hs[1], hs[2], hs[3], hs[4]
		foreign := h.accept(t, other, 1)[0]
		h.waitStored(t, append(hs, foreign)...)

		type errs = map[int]string
		steps := []struct {
			name        string
			reports     []events.ApplyReport
			wantUpdated int
			wantErrors  errs
			wantStatus  map[int64]int
		}{
			{"sent and failed are applied",
				[]events.ApplyReport{{Index: 0, Pos: a, Status: 2}, {Index: 1, Pos: bb, Status: 3}},
				2, errs{}, map[int64]int{a: 2, bb: 3}},
			{"statuses 0, 1 and 4 are invalid",
				[]events.ApplyReport{{Index: 0, Pos: c, Status: 0}, {Index: 1, Pos: c, Status: 1}, {Index: 2, Pos: c, Status: 4}},
				0, errs{0: "Invalid status", 1: "Invalid status", 2: "Invalid status"}, map[int64]int{c: 0}},
			{"unknown message",
				[]events.ApplyReport{{Index: 0, Pos: unknownPos, Status: 2}, {Index: 1, Pos: c, Status: 2}},
				1, errs{0: "Unknown hash"}, map[int64]int{c: 2}},
			{"a hash ingress could not decode (position 0) is unknown",
				[]events.ApplyReport{{Index: 0, Pos: 0, Status: 2}},
				0, errs{0: "Unknown hash"}, map[int64]int{}},
			{"another account's message is unknown and untouched",
				[]events.ApplyReport{{Index: 0, Pos: foreign, Status: 3}},
				0, errs{0: "Unknown hash"}, map[int64]int{foreign: 0}},
			{"repeating the same final status is counted",
				[]events.ApplyReport{{Index: 0, Pos: a, Status: 2}, {Index: 1, Pos: bb, Status: 3}},
				2, errs{}, map[int64]int{a: 2, bb: 3}},
			{"flipping a final status is refused",
				[]events.ApplyReport{{Index: 0, Pos: a, Status: 3}, {Index: 1, Pos: bb, Status: 2}},
				0, errs{0: "Status already final", 1: "Status already final"}, map[int64]int{a: 2, bb: 3}},
			{"the first of a duplicate decides",
				[]events.ApplyReport{{Index: 0, Pos: d, Status: 3}, {Index: 1, Pos: d, Status: 3}, {Index: 2, Pos: d, Status: 2}},
				2, errs{2: "Status already final"}, map[int64]int{d: 3}},
			{"a duplicate agreeing with the stored status counts after a refusal",
				[]events.ApplyReport{{Index: 0, Pos: a, Status: 3}, {Index: 1, Pos: a, Status: 2}},
				1, errs{0: "Status already final"}, map[int64]int{a: 2}},
			{"entries are processed in index order, not list order",
				[]events.ApplyReport{{Index: 1, Pos: e, Status: 2}, {Index: 0, Pos: e, Status: 3}, {Index: 2, Pos: e, Status: 4}},
				1, errs{1: "Status already final", 2: "Invalid status"}, map[int64]int{e: 3}},
		}
		for _, s := range steps {
			rep := h.mustApply(t, events.ApplyRequest{AccountID: account, Device: "Pixel", Reports: s.reports})
			got := errs{}
			for _, e := range rep.Errors {
				got[e.Index] = e.Error
			}
			if rep.Updated != s.wantUpdated || !reflect.DeepEqual(got, s.wantErrors) {
				t.Errorf("%s: updated %d errors %v, want %d %v", s.name, rep.Updated, got, s.wantUpdated, s.wantErrors)
			}
			for i := 1; i < len(rep.Errors); i++ {
				if rep.Errors[i-1].Index >= rep.Errors[i].Index {
					t.Errorf("%s: errors not in index order: %v", s.name, rep.Errors)
				}
			}
			for hash, want := range s.wantStatus {
				if got := h.statusOf(t, hash); got != want {
					t.Errorf("%s: status of %d = %d, want %d", s.name, hash, got, want)
				}
			}
		}
		row, err := h.store.Get(context.Background(), a)
		if err != nil || row.Device != "Pixel" || row.ReportedAt.IsZero() {
			t.Errorf("row of a: %+v, %v; want device Pixel and a report time", row, err)
		}
		if n := h.metric(t, "apitosms_status_reports_total", map[string]string{"outcome": "conflict"}); n != 5 {
			t.Errorf("conflict reports metric = %v, want 5", n)
		}
	})
}

// TestReadYourWrites reports on messages right after they were published:
// the service waits for its ingest to catch up instead of answering unknown.
func TestReadYourWrites(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h := start(t, b)
		const account = 3
		for range 4 { // a backlog ahead of the reported batch
			h.accept(t, account, 500)
		}
		hs := h.accept(t, account, 200)
		reports := make([]events.ApplyReport, len(hs))
		for i, hash := range hs {
			reports[i] = events.ApplyReport{Index: i, Pos: hash, Status: 2 + i%2}
		}
		rep := h.mustApply(t, events.ApplyRequest{AccountID: account, Reports: reports})
		if rep.Updated != len(hs) || len(rep.Errors) != 0 {
			t.Fatalf("updated %d errors %v, want %d and none", rep.Updated, rep.Errors, len(hs))
		}
		for i, hash := range hs {
			if got := h.statusOf(t, hash); got != 2+i%2 {
				t.Fatalf("status of %d = %d, want %d", hash, got, 2+i%2)
			}
		}
	})
}

// TestConcurrentFlip races requests asking 2 and 3 for the same messages:
// each message ends in exactly one final status and only requests asking
// that status are counted.
func TestConcurrentFlip(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h := start(t, b)
		const account, workers = 5, 20
		hs := h.accept(t, account, 50)
		h.waitStored(t, hs...)

		var mu sync.Mutex
		counted := map[int64]map[int]int{} // position -> asked status -> successes
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				status := 2 + w%2
				order := rand.Perm(len(hs))
				reports := make([]events.ApplyReport, len(hs))
				for i, j := range order {
					reports[i] = events.ApplyReport{Index: i, Pos: hs[j], Status: status}
				}
				rep, err := h.apply(events.ApplyRequest{AccountID: account, Device: fmt.Sprint("w", w), Reports: reports})
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				failed := map[int]bool{}
				for _, e := range rep.Errors {
					if e.Error != "Status already final" {
						t.Errorf("worker %d: unexpected error %v", w, e)
					}
					failed[e.Index] = true
				}
				if rep.Updated+len(rep.Errors) != len(hs) {
					t.Errorf("worker %d: updated %d + errors %d != %d", w, rep.Updated, len(rep.Errors), len(hs))
				}
				mu.Lock()
				defer mu.Unlock()
				for _, r := range reports {
					if !failed[r.Index] {
						if counted[r.Pos] == nil {
							counted[r.Pos] = map[int]int{}
						}
						counted[r.Pos][r.Status]++
					}
				}
			})
		}
		wg.Wait()
		for _, hash := range hs {
			final := h.statusOf(t, hash)
			if final != 2 && final != 3 {
				t.Errorf("%d ended with status %d", hash, final)
				continue
			}
			if len(counted[hash]) != 1 || counted[hash][final] == 0 {
				t.Errorf("%d is %d but successes by asked status were %v", hash, final, counted[hash])
			}
		}
	})
}

// TestReportedBatch checks that each request publishes exactly the messages
// it changed, with their FIFO positions, and nothing when it changed none.
func TestReportedBatch(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h := start(t, b)
		const account = 9
		hs := h.accept(t, account, 4)
		h.waitStored(t, hs...)
		h.mustApply(t, events.ApplyRequest{AccountID: account, Reports: []events.ApplyReport{{Index: 0, Pos: hs[0], Status: 2}}})

		rep := h.mustApply(t, events.ApplyRequest{AccountID: account, Reports: []events.ApplyReport{
			{Index: 0, Pos: hs[0], Status: 2}, // repeat: counted, not changed
			{Index: 1, Pos: hs[1], Status: 3},
			{Index: 2, Pos: hs[2], Status: 2},
			{Index: 3, Pos: hs[2], Status: 2}, // duplicate: one change
			{Index: 4, Pos: unknownPos, Status: 2},
			{Index: 5, Pos: hs[3], Status: 1},
		}})
		if rep.Updated != 4 || len(rep.Errors) != 2 {
			t.Fatalf("reply %+v, want 4 updated and 2 errors", rep)
		}
		// A request changing nothing publishes nothing.
		h.mustApply(t, events.ApplyRequest{AccountID: account, Reports: []events.ApplyReport{{Index: 0, Pos: hs[1], Status: 3}}})

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cons, err := h.br.JS.OrderedConsumer(ctx, b.Names.ReportedStream(), jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		var got []events.ReportedBatch
		batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for msg := range batch.Messages() {
			var ev events.ReportedBatch
			if err := json.Unmarshal(msg.Data(), &ev); err != nil {
				t.Fatal(err)
			}
			got = append(got, ev)
		}
		if len(got) != 2 {
			t.Fatalf("got %d reported batches, want 2: %+v", len(got), got)
		}
		if want := []events.Reported{{Pos: hs[0], Status: 2}}; got[0].AccountID != account || !reflect.DeepEqual(got[0].Items, want) {
			t.Errorf("first batch %+v, want items %v", got[0], want)
		}
		want := []events.Reported{{Pos: hs[1], Status: 3}, {Pos: hs[2], Status: 2}}
		if got[1].AccountID != account || !reflect.DeepEqual(got[1].Items, want) || got[1].ReportedAt.IsZero() {
			t.Errorf("second batch %+v, want items %v", got[1], want)
		}
		// The row keeps the event's report time to the microsecond (SQLite
		// binds it as the text bun would have inlined).
		row, err := h.store.Get(context.Background(), hs[1])
		if err != nil || !row.ReportedAt.Equal(got[1].ReportedAt) || row.Status != 3 {
			t.Errorf("row %+v, %v: want status 3 reported at %v", row, err, got[1].ReportedAt)
		}
	})
}
