package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/apitosms/apitosms/libs/events"
)

// The queue answer is encoding/json's, byte for byte (contract Part 1).
func TestQueueResponseJSON(t *testing.T) {
	items := []queueItem{{Index: 0, Hash: "aB3dE", Phone: "+15550001111"}, {Index: 12, Hash: "x", Phone: "5550002222"}}
	errs := []events.IndexError{{Index: 1, Error: "invalid phone"}, {Index: 3, Error: "text too long"}}
	for _, r := range []queueResponse{
		{OK: true, Queued: 2, Failed: 2, Items: items, Errors: errs},
		{OK: true, Queued: 1, Items: items[:1], Errors: []events.IndexError{}},
		{OK: false, Failed: 2, Items: []queueItem{}, Errors: errs},
		{},
		{Items: []queueItem{{Hash: "a<b>&c", Phone: "1"}}},
		{Items: []queueItem{{Hash: "a&b", Phone: "1"}}},
		{Items: []queueItem{{Hash: "a>b", Phone: "1"}}},
		{Items: []queueItem{{Hash: "h", Phone: "tab\there \"q\" \\ é \u2028 \xff"}}},
		{Errors: []events.IndexError{{Index: -1, Error: "quote \" and <script>"}}},
		{Errors: []events.IndexError{{Error: "\x7f"}}},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendQueueResponse(nil, &r)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("got %s (%v), want %s", got, err, want)
		}
	}
}
