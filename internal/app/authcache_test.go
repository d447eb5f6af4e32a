package app

import (
	"fmt"
	"testing"

	"github.com/apitosms/apitosms/libs/testkit"
)

// Ingress keeps billing's token lookups for a few seconds
// (APITOSMS_INGRESS_AUTH_CACHE_TTL): every change billing makes to what a
// lookup answers must be seen by the very next request, also right after
// the token was looked up (and its answer kept).
func TestCachedLookupsFollowChanges(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, map[string]string{"APITOSMS_INGRESS_AUTH_CACHE_TTL": "1h"})
		id, tok := account(t, p.base, 1000, 100)
		g := p.base + "/api/" + tok + "/get_messages"
		q := p.base + "/api/" + tok + "/queue"
		sub := fmt.Sprintf("%s/admin/v1/accounts/%d/subscription", p.base, id)

		if r := do(t, "GET", g, nil); r.status != 200 || r.header.Get("X-RateLimit-Limit") != "100" {
			t.Fatalf("first lookup: %d limit %s", r.status, r.header.Get("X-RateLimit-Limit"))
		}
		// A new rate limit applies at once.
		if r := admin(t, "PUT", sub, map[string]any{"plan": "t", "monthlyLimit": 1, "rateLimitPerMinute": 50}); r.status != 200 {
			t.Fatalf("put subscription: %d %s", r.status, r.body)
		}
		if r := do(t, "GET", g, nil); r.status != 200 || r.header.Get("X-RateLimit-Limit") != "50" {
			t.Fatalf("after the new subscription: %d limit %s", r.status, r.header.Get("X-RateLimit-Limit"))
		}
		// The limit used up is refused; a bigger one is granted at once.
		if r := do(t, "POST", q, items("c", 1)); r.status != 200 {
			t.Fatalf("first message: %d %s", r.status, r.body)
		}
		if r := do(t, "POST", q, items("c", 1)); r.status != 402 {
			t.Fatalf("over the limit: %d %s", r.status, r.body)
		}
		if r := admin(t, "PUT", sub, map[string]any{"plan": "t", "monthlyLimit": 10, "rateLimitPerMinute": 50}); r.status != 200 {
			t.Fatalf("put subscription: %d %s", r.status, r.body)
		}
		if r := do(t, "POST", q, items("d", 1)); r.status != 200 {
			t.Fatalf("after raising the limit: %d %s", r.status, r.body)
		}
		// An ended subscription refuses at once.
		if r := admin(t, "DELETE", sub, nil); r.status != 200 {
			t.Fatalf("end subscription: %d %s", r.status, r.body)
		}
		if r := do(t, "POST", q, items("e", 1)); r.status == 200 {
			t.Fatalf("after the subscription ended: %d %s", r.status, r.body)
		}
		// A rotated token fails at once, the new one works.
		r := admin(t, "POST", fmt.Sprintf("%s/admin/v1/accounts/%d/rotate-token", p.base, id), nil)
		if r.status != 200 {
			t.Fatalf("rotate: %d %s", r.status, r.body)
		}
		if r := do(t, "GET", g, nil); r.status != 401 {
			t.Fatalf("rotated token: %d %s", r.status, r.body)
		}
		fresh := r.json(t)["apiToken"].(string)
		if r := do(t, "GET", p.base+"/api/"+fresh+"/get_messages", nil); r.status != 200 {
			t.Fatalf("new token: %d %s", r.status, r.body)
		}
	})
}
