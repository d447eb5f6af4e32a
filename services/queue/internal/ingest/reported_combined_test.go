package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// The reported stream holds single ReportedBatch objects (one status
// request, or any message from before combined ones) and arrays of them
// (the requests of one group commit): one Handle applies both, each report
// once, with its own event's device and status; the same events again,
// one by one (the status relay republishing after a lost acknowledgement
// of the combined message), change nothing.
func TestReportedCombinedAndSingleMessages(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		r := newReportedRig(t, b, 5, noEvents)
		at := time.Now().UTC().Truncate(time.Millisecond)
		evs := []events.ReportedBatch{
			{AccountID: 1, ReportedAt: at, Device: "A", Items: []events.Reported{{Pos: 1, Status: events.StatusSent}, {Pos: 2, Status: events.StatusSent}}},
			{AccountID: 1, ReportedAt: at, Device: "B", Items: []events.Reported{{Pos: 3, Status: events.StatusFailed}}},
			{AccountID: 1, ReportedAt: at, Device: "C", Items: []events.Reported{{Pos: 4, Status: events.StatusFailed}}},
		}
		payloads := make([][]byte, len(evs))
		for i, ev := range evs {
			var err error
			if payloads[i], err = events.Marshal(ev); err != nil {
				t.Fatal(err)
			}
		}
		publish := func(data []byte) {
			t.Helper()
			if _, err := r.js.Publish(ctx, r.names.ReportedSubject(), data); err != nil {
				t.Fatal(err)
			}
		}
		publish(events.ReportedMessage(payloads[:2])) // a combined message
		publish(payloads[2])                          // an old single object
		if err := r.h.Handle(ctx, fetchLast(t, r.js, r.names.ReportedStream(), 2)); err != nil {
			t.Fatal(err)
		}
		if got := testutil.ToFloat64(r.m.Reported); got != 4 {
			t.Fatalf("%v messages set final, want 4", got)
		}
		got, err := r.st.Lookup(ctx, 1, []int64{1, 2, 3, 4, 5})
		if err != nil {
			t.Fatal(err)
		}
		want := map[int64]struct {
			status int
			device string
		}{1: {2, "A"}, 2: {2, "A"}, 3: {3, "B"}, 4: {3, "C"}, 5: {1, ""}}
		for _, m := range got {
			if w := want[m.Pos]; m.Status != w.status || m.Device != w.device {
				t.Errorf("message %d: status %d device %q, want %d %q", m.Pos, m.Status, m.Device, w.status, w.device)
			}
		}
		if len(got) != 5 {
			t.Fatalf("lookup found %d messages, want 5", len(got))
		}

		// The relay's republish of each event, and a redelivery of the
		// combined message: no-ops.
		for _, p := range payloads[:2] {
			publish(p)
		}
		publish(events.ReportedMessage(payloads[:2]))
		if err := r.h.Handle(ctx, fetchLast(t, r.js, r.names.ReportedStream(), 3)); err != nil {
			t.Fatal(err)
		}
		if got := testutil.ToFloat64(r.m.Reported); got != 4 {
			t.Fatalf("%v messages set final after the repeats, want still 4", got)
		}
	})
}
