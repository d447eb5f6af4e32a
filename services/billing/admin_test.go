package billing_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/libs/timestamp"
	"github.com/apitosms/apitosms/libs/token"
)

var contractTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$`)

func TestAdminAuth(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		r := startReplica(t, b)
		for _, bearer := range []string{"", "wrong", adminToken + "x"} {
			for _, req := range [][2]string{{"POST", "/admin/v1/accounts"}, {"GET", "/admin/v1/accounts/1"},
				{"PUT", "/admin/v1/accounts/1/subscription"}, {"DELETE", "/admin/v1/accounts/1/subscription"},
				{"POST", "/admin/v1/accounts/1/rotate-token"}} {
				status, body := r.do(t, req[0], req[1], bearer, map[string]any{"name": "n", "email": "a@b"})
				if status != 401 || body["code"] != "unauthorized" {
					t.Fatalf("%s %s with bearer %q: %d %v, want 401", req[0], req[1], bearer, status, body)
				}
			}
		}
	})
}

func TestAdminAccounts(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		r := startReplica(t, b)

		out := r.admin(t, "POST", "/admin/v1/accounts", map[string]any{"name": " Shop ", "email": "shop@example.com"}, 201)
		tok, _ := out["apiToken"].(string)
		if !token.WellFormed(tok) || out["name"] != "Shop" || out["email"] != "shop@example.com" ||
			!contractTime.MatchString(out["createdAt"].(string)) || out["id"].(float64) < 1 {
			t.Fatalf("created account = %v", out)
		}
		a := account{ID: int64(out["id"].(float64)), Token: tok, path: "/admin/v1/accounts/" + itoa(int64(out["id"].(float64)))}

		got := r.admin(t, "GET", a.path, nil, 200)
		month := timestamp.Month(time.Now())
		if got["id"] != out["id"] || got["name"] != "Shop" || got["createdAt"] != out["createdAt"] ||
			got["subscription"] != nil || got["month"] != month || got["used"] != 0.0 || got["limit"] != 0.0 {
			t.Fatalf("account without subscription = %v", got)
		}
		if _, ok := got["apiToken"]; ok {
			t.Fatal("GET shows the API token")
		}
		if _, ok := got["subscription"]; !ok {
			t.Fatal("GET omits subscription instead of null")
		}

		sub := r.subscribe(t, a, map[string]any{"plan": "pro", "monthlyLimit": 1000})
		if sub["plan"] != "pro" || sub["monthlyLimit"] != 1000.0 || sub["rateLimitPerMinute"] != 60.0 ||
			sub["expiresAt"] != nil || sub["active"] != true || !contractTime.MatchString(sub["startedAt"].(string)) {
			t.Fatalf("put subscription = %v", sub)
		}
		expires := "2099-01-02T03:04:05+02:00"
		sub = r.subscribe(t, a, map[string]any{"plan": "max", "monthlyLimit": 50, "rateLimitPerMinute": 120, "expiresAt": expires})
		if sub["plan"] != "max" || sub["rateLimitPerMinute"] != 120.0 || sub["expiresAt"] != "2099-01-02T01:04:05+00:00" || sub["active"] != true {
			t.Fatalf("replaced subscription = %v", sub)
		}
		got = r.admin(t, "GET", a.path, nil, 200)
		if s, _ := got["subscription"].(map[string]any); s["plan"] != "max" || got["limit"] != 50.0 {
			t.Fatalf("account with subscription = %v", got)
		}

		ended := r.admin(t, "DELETE", a.path+"/subscription", nil, 200)
		if ended["active"] != false || ended["plan"] != "max" || !contractTime.MatchString(ended["endedAt"].(string)) {
			t.Fatalf("ended subscription = %v", ended)
		}
		if got = r.admin(t, "GET", a.path, nil, 200); got["limit"] != 0.0 {
			t.Fatalf("limit after ending = %v", got["limit"])
		}
		// PUT makes it active again.
		if sub = r.subscribe(t, a, map[string]any{"plan": "pro", "monthlyLimit": 10}); sub["active"] != true || sub["endedAt"] != nil {
			t.Fatalf("renewed subscription = %v", sub)
		}

		rot := r.admin(t, "POST", a.path+"/rotate-token", nil, 200)
		if nt, _ := rot["apiToken"].(string); !token.WellFormed(nt) || nt == a.Token || len(rot) != 1 {
			t.Fatalf("rotate-token = %v", rot)
		}

		// Not found.
		bare := r.createAccount(t)
		for _, c := range []struct{ method, path, code string }{
			{"GET", "/admin/v1/accounts/999999", "account_not_found"},
			{"GET", "/admin/v1/accounts/abc", "account_not_found"},
			{"GET", "/admin/v1/accounts/-1", "account_not_found"},
			{"PUT", "/admin/v1/accounts/999999/subscription", "account_not_found"},
			{"DELETE", "/admin/v1/accounts/999999/subscription", "account_not_found"},
			{"DELETE", bare.path + "/subscription", "subscription_not_found"},
			{"POST", "/admin/v1/accounts/999999/rotate-token", "account_not_found"},
		} {
			out := r.admin(t, c.method, c.path, map[string]any{"plan": "p", "monthlyLimit": 1}, 404)
			if out["code"] != c.code || out["error"] == "" {
				t.Fatalf("%s %s = %v, want code %s", c.method, c.path, out, c.code)
			}
		}
		if out := r.admin(t, "GET", "/admin/v1/accounts/abc", nil, 404); out["error"] != "Account not found" {
			t.Fatalf("unknown account = %v", out)
		}
		if out := r.admin(t, "DELETE", bare.path+"/subscription", nil, 404); out["error"] != "No subscription" {
			t.Fatalf("no subscription = %v", out)
		}
	})
}

func TestAdminValidation(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		r := startReplica(t, b)
		a := r.createAccount(t)
		long := func(n int) string { return strings.Repeat("é", n) }
		cases := []struct {
			name, method, path string
			body               any
			code, mentions     string
		}{
			{"not json", "POST", "/admin/v1/accounts", "{", "invalid_json", ""},
			{"array", "POST", "/admin/v1/accounts", "[]", "invalid_json", ""},
			{"null", "POST", "/admin/v1/accounts", "null", "invalid_json", ""},
			{"no name", "POST", "/admin/v1/accounts", map[string]any{"email": "a@b"}, "invalid_body", "name"},
			{"blank name", "POST", "/admin/v1/accounts", map[string]any{"name": "  ", "email": "a@b"}, "invalid_body", "name"},
			{"name not string", "POST", "/admin/v1/accounts", map[string]any{"name": 5, "email": "a@b"}, "invalid_body", "name"},
			{"long name", "POST", "/admin/v1/accounts", map[string]any{"name": long(201), "email": "a@b"}, "invalid_body", "name"},
			{"no @", "POST", "/admin/v1/accounts", map[string]any{"name": "n", "email": "ab"}, "invalid_body", "email"},
			{"long email", "POST", "/admin/v1/accounts", map[string]any{"name": "n", "email": "a@" + long(253)}, "invalid_body", "email"},
			{"sub not json", "PUT", a.path + "/subscription", "nope", "invalid_json", ""},
			{"no plan", "PUT", a.path + "/subscription", map[string]any{"monthlyLimit": 1}, "invalid_body", "plan"},
			{"long plan", "PUT", a.path + "/subscription", map[string]any{"plan": long(101), "monthlyLimit": 1}, "invalid_body", "plan"},
			{"no limit", "PUT", a.path + "/subscription", map[string]any{"plan": "p"}, "invalid_body", "monthlyLimit"},
			{"negative limit", "PUT", a.path + "/subscription", map[string]any{"plan": "p", "monthlyLimit": -1}, "invalid_body", "monthlyLimit"},
			{"fractional limit", "PUT", a.path + "/subscription", map[string]any{"plan": "p", "monthlyLimit": 1.5}, "invalid_body", "monthlyLimit"},
			{"string limit", "PUT", a.path + "/subscription", map[string]any{"plan": "p", "monthlyLimit": "10"}, "invalid_body", "monthlyLimit"},
			{"zero rate", "PUT", a.path + "/subscription", map[string]any{"plan": "p", "monthlyLimit": 1, "rateLimitPerMinute": 0}, "invalid_body", "rateLimitPerMinute"},
			{"bad expiry", "PUT", a.path + "/subscription", map[string]any{"plan": "p", "monthlyLimit": 1, "expiresAt": "tomorrow"}, "invalid_body", "expiresAt"},
		}
		for _, c := range cases {
			status, out := r.do(t, c.method, c.path, adminToken, c.body)
			if status != 400 || out["code"] != c.code || !strings.Contains(out["error"].(string), c.mentions) {
				t.Errorf("%s: %d %v, want 400 %s mentioning %q", c.name, status, out, c.code, c.mentions)
			}
		}
		// Limits are inclusive, and monthlyLimit 0 is allowed.
		r.admin(t, "POST", "/admin/v1/accounts", map[string]any{"name": long(200), "email": "a@" + long(252)}, 201)
		r.subscribe(t, a, map[string]any{"plan": long(100), "monthlyLimit": 0, "rateLimitPerMinute": 1, "expiresAt": nil})
	})
}
