package apply

import (
	"reflect"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/events"
)

func TestOutboxCodecRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456000, time.UTC)
	for _, ev := range []events.ReportedBatch{
		{AccountID: 1, ReportedAt: at, Items: []events.Reported{}},
		{AccountID: 42, ReportedAt: at, Device: "pixel-7", Items: []events.Reported{
			{Pos: events.Position(900, 3), Status: 2}, {Pos: events.Position(5, 0), Status: 3}, {Pos: events.Position(1<<40, 1023), Status: 2},
		}},
	} {
		got, err := decodeOutbox(encodeOutbox(ev))
		if err != nil || !reflect.DeepEqual(got, ev) {
			t.Errorf("round trip of %+v = %+v, %v", ev, got, err)
		}
		enc := encodeOutbox(ev)
		for cut := range len(enc) {
			if _, err := decodeOutbox(enc[:cut]); err == nil {
				t.Errorf("decoding %d of %d bytes succeeded", cut, len(enc))
			}
		}
	}
}
