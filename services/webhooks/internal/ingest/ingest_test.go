package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/events"
)

// A chunk's items are each event's single-delivery payload with its id put
// first, whatever the characters of the id, and its id digests the ids.
func TestChunkRowRendersEachItemAsItsPayload(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 10, 33, 37, 0, time.UTC)
	evs := []events.Notification{
		{ID: "msg_0123_sent", Type: events.TypeMessageSent, At: at, Data: json.RawMessage(`{"hash":"0123","text":"caf\u00e9 \"x\""}`)},
		{ID: "odd\"id\\é", Type: events.TypeMessageFailed, At: at.Add(-time.Second), Data: json.RawMessage(`{}`)},
		{ID: "phone.offline.7.ab.3", Type: events.TypePhoneOffline, At: at, Data: json.RawMessage(`[1,2]`)},
		// The same second in another zone, then the next second by a
		// millisecond: each item's time is its own, however it is cached.
		{ID: "e4", Type: events.TypePhoneOnline, At: at.Add(999 * time.Millisecond).In(time.FixedZone("x", 3600)), Data: json.RawMessage(`1`)},
		{ID: "e5", Type: events.TypePhoneOnline, At: at.Add(1000 * time.Millisecond), Data: json.RawMessage(`2`)},
	}
	row := chunkRow("wh_a", evs)
	var want []string
	for _, n := range evs {
		want = append(want, `{"id":`+strconv.Quote(n.ID)+`,`+string(Payload(n)[1:]))
	}
	if row.Payload != strings.Join(want, ",") {
		t.Fatalf("chunk payload\n%s\nwant\n%s", row.Payload, strings.Join(want, ","))
	}
	ids := "msg_0123_sent,odd\"id\\é,phone.offline.7.ab.3,e4,e5"
	sum := sha256.Sum256([]byte(ids))
	if row.IDs != ids || row.EventID != "chunk_"+hex.EncodeToString(sum[:16]) || row.Events != 5 ||
		row.EventMs != at.Add(-time.Second).UnixMilli() || row.Type != "batch" {
		t.Fatalf("chunk row %+v", row)
	}
	var items []map[string]any
	if err := json.Unmarshal([]byte("["+row.Payload+"]"), &items); err != nil || len(items) != 5 || items[1]["id"] != evs[1].ID {
		t.Fatalf("items do not decode as JSON: %v %v", err, items)
	}
}
