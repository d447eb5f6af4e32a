package app

import (
	"strings"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
)

// Contract §12 end to end through the real process: per-item validation of
// the new fields, high before normal, a scheduled message held back, the
// §12 fields in tracking, and the settings endpoint.
func TestQueueExtrasEndToEnd(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, nil)
		base := p.base
		_, tok := account(t, base, 1000, 100000)
		later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		r := do(t, "POST", base+"/api/"+tok+"/queue", []map[string]any{
			{"phone": "+15550000001", "message": "normal"},
			{"phone": "+15550000002", "message": "urgent", "priority": "high"},
			{"phone": "+15550000003", "message": "later", "sendAt": later, "ttl": 86400},
			{"phone": "+15550000004", "message": "bad", "priority": "urgent"},
			{"phone": "+15550000005", "message": "bad", "ttl": 10},
			{"phone": "+15550000006", "message": "bad", "sendAt": "soon"},
			{"phone": "+15550000007", "message": "bad", "validUntil": "2020-01-01T00:00:00+00:00"},
		})
		if r.status != 200 {
			t.Fatalf("queue: %d %s", r.status, r.body)
		}
		if !strings.HasSuffix(string(r.body), `"errors":[{"index":3,"error":"Invalid priority"},{"index":4,"error":"Invalid ttl"},{"index":5,"error":"Invalid sendAt"},{"index":6,"error":"Invalid validUntil"}]}`) {
			t.Fatalf("queue answer %s", r.body)
		}
		var hashes []string
		for _, it := range r.json(t)["items"].([]any) {
			hashes = append(hashes, it.(map[string]any)["hash"].(string))
		}
		got := do(t, "GET", base+"/api/"+tok+"/get_messages?limit=10", nil).list(t)
		if len(got) != 2 || got[0]["text"] != "urgent" || got[1]["text"] != "normal" {
			t.Fatalf("get_messages %v, want urgent then normal, the scheduled one held back", got)
		}
		m := do(t, "GET", base+"/api/"+tok+"/messages/"+hashes[2], nil).json(t)
		if m["status"] != 0.0 || m["sendAt"] != strings.Replace(later, "Z", "+00:00", 1) || m["priority"] != "normal" || m["validUntil"] == nil {
			t.Fatalf("scheduled message %v", m)
		}
		if m := do(t, "GET", base+"/api/"+tok+"/messages/"+hashes[0], nil).json(t); m["sendAt"] != nil || m["priority"] != nil {
			t.Fatalf("a Part 1 message shows §12 fields: %v", m)
		}

		r = do(t, "GET", base+"/api/"+tok+"/settings", nil)
		if r.status != 200 || string(r.body) != `{"leaseSeconds":0,"onLeaseExpiry":"requeue","maxAttempts":3}` || r.header.Get("X-RateLimit-Limit") != "600" {
			t.Fatalf("settings: %d %s %v", r.status, r.body, r.header)
		}
		r = do(t, "PATCH", base+"/api/"+tok+"/settings", map[string]any{"leaseSeconds": 300, "onLeaseExpiry": "expire"})
		if r.status != 200 || string(r.body) != `{"leaseSeconds":300,"onLeaseExpiry":"expire","maxAttempts":3}` {
			t.Fatalf("patch settings: %d %s", r.status, r.body)
		}
		wantError(t, do(t, "PATCH", base+"/api/"+tok+"/settings", map[string]any{"leaseSeconds": 30}), 400, "invalid_settings")
		wantError(t, do(t, "PATCH", base+"/api/"+tok+"/settings", []int{1}), 400, "invalid_json")
		wantError(t, do(t, "GET", base+"/api/"+strings.Repeat("b", 64)+"/settings", nil), 401, "invalid_token")
		if r := do(t, "GET", base+"/api/"+tok+"/settings", nil); string(r.body) != `{"leaseSeconds":300,"onLeaseExpiry":"expire","maxAttempts":3}` {
			t.Fatalf("settings after a refused patch: %s", r.body)
		}
	})
}
