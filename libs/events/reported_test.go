package events_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/events"
)

// TestReportedMessage: one event travels as the object it always was;
// several as a JSON array; DecodeReported reads both forms back in order.
func TestReportedMessage(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 123000, time.UTC)
	evs := []events.ReportedBatch{
		{AccountID: 1, ReportedAt: at, Device: "a", Items: []events.Reported{{Pos: 1025, Status: 2}}},
		{AccountID: 2, ReportedAt: at, Items: []events.Reported{{Pos: 2048, Status: 3}, {Pos: 2049, Status: 2}}},
		{AccountID: 1, ReportedAt: at.Add(time.Second), Device: "b", Items: []events.Reported{{Pos: 1026, Status: 3}}},
	}
	var payloads [][]byte
	for _, ev := range evs {
		p, err := events.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, p)
	}
	for n := 1; n <= len(evs); n++ {
		msg := events.ReportedMessage(payloads[:n])
		if len(msg) != events.ReportedMessageLen(payloads[:n]) {
			t.Errorf("%d events: length %d, ReportedMessageLen %d", n, len(msg), events.ReportedMessageLen(payloads[:n]))
		}
		if n == 1 {
			var one events.ReportedBatch
			if err := json.Unmarshal(msg, &one); err != nil || !reflect.DeepEqual(one, evs[0]) {
				t.Errorf("one event: %s is not the old single object (%v)", msg, err)
			}
		} else if !json.Valid(msg) || msg[0] != '[' {
			t.Errorf("%d events: %s is not a JSON array", n, msg)
		}
		got, err := events.DecodeReported([]events.ReportedBatch{evs[0]}, msg)
		if err != nil {
			t.Fatal(err)
		}
		if want := append([]events.ReportedBatch{evs[0]}, evs[:n]...); !reflect.DeepEqual(got, want) {
			t.Errorf("%d events: decoded %+v, want %+v", n, got, want)
		}
	}
	// An old message written by hand, with leading white space.
	got, err := events.DecodeReported(nil, []byte(` {"a":7,"at":"2026-12-02T10:00:00Z","items":[{"p":1025,"s":2}]}`))
	if err != nil || len(got) != 1 || got[0].AccountID != 7 || got[0].Items[0] != (events.Reported{Pos: 1025, Status: 2}) {
		t.Errorf("old message decoded to %+v (%v)", got, err)
	}
	for _, bad := range []string{``, `[`, `[{"a":"x"}]`, `{"a":1`, `7`} {
		if _, err := events.DecodeReported(nil, []byte(bad)); err == nil {
			t.Errorf("%q decoded without error", bad)
		}
	}
}
