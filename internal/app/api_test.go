package app

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/apitosms/apitosms/libs/testkit"
)

var hashRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// allInOne runs -target=all: on the embedded backend with no NATS URL at all,
// so the process starts its own embedded server, as `make run` does.
func allInOne(t *testing.T, b testkit.Backend, env map[string]string) *proc {
	t.Helper()
	e := map[string]string{}
	if !b.External {
		e["APITOSMS_NATS_URL"] = ""
	}
	for k, v := range env {
		e[k] = v
	}
	return start(t, b, e)
}

// TestContractEndToEnd drives Part 1 of the contract through both
// topologies (split_test.go), on both backends.
func TestContractEndToEnd(t *testing.T) {
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			testkit.Each(t, func(t *testing.T, b testkit.Backend) {
				p := topo.start(t, b, map[string]string{"APITOSMS_INGRESS_MAX_BATCH": "10"})
				contractPart1(t, p.base)
			})
		})
	}
}

func contractPart1(t *testing.T, base string) {
	t.Helper()
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := do(t, "GET", base+path, nil); r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
	}

	// §1 tokens.
	for _, tok := range []string{"short", strings.Repeat("A", 64), strings.Repeat("a", 64)} {
		r := do(t, "POST", base+"/api/"+tok+"/queue", `[]`)
		m := r.json(t)
		if r.status != 401 || m["error"] != "Invalid API token" || m["code"] != "invalid_token" {
			t.Fatalf("token %q: %d %s", tok, r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Fatalf("content type %q", ct)
		}
	}
	if r := do(t, "POST", base+"/admin/v1/accounts", map[string]string{"name": "x", "email": "x@y"}); r.status != 401 {
		t.Fatalf("admin without bearer: %d", r.status)
	}

	// No subscription: queue refused, get_messages works.
	r := admin(t, "POST", base+"/admin/v1/accounts", map[string]any{"name": "NoSub", "email": "n@example.com"})
	noSub := r.json(t)["apiToken"].(string)
	r = do(t, "POST", base+"/api/"+noSub+"/queue", items("x", 1))
	if m := r.json(t); r.status != 402 || m["code"] != "subscription_required" || m["error"] != "No active subscription" {
		t.Fatalf("no subscription: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", base+"/api/"+noSub+"/get_messages", nil); r.status != 200 || string(r.body) != "[]" {
		t.Fatalf("get_messages without subscription: %d %s", r.status, r.body)
	}
	r = do(t, "POST", base+"/api/"+noSub+"/status", `{"messages":[{"hash":"0000000000000000","status":2}]}`)
	if m := r.json(t); r.status != 200 || m["ok"] != true || m["updated"] != 0.0 {
		t.Fatalf("status without subscription: %d %s", r.status, r.body)
	}

	id, tok := account(t, base, 5, 1000)
	q := base + "/api/" + tok + "/queue"

	// §2 partial success, normalization, rate-limit headers.
	r = do(t, "POST", q, `[{"phone":"+1 (234) 567-890","message":"first"},{"phone":"12","message":"bad"},{"phone":"0712345678","text":"second"}]`)
	m := r.json(t)
	if r.status != 200 || m["ok"] != true || m["queued"] != 2.0 || m["failed"] != 1.0 {
		t.Fatalf("queue: %d %s", r.status, r.body)
	}
	its := m["items"].([]any)
	first, second := its[0].(map[string]any), its[1].(map[string]any)
	if first["index"] != 0.0 || first["phone"] != "+1234567890" || !hashRE.MatchString(first["hash"].(string)) ||
		second["index"] != 2.0 || second["phone"] != "0712345678" {
		t.Fatalf("items: %s", r.body)
	}
	if e := m["errors"].([]any)[0].(map[string]any); e["index"] != 1.0 || e["error"] != "Invalid phone format" {
		t.Fatalf("errors: %s", r.body)
	}
	if r.header.Get("X-RateLimit-Limit") != "1000" || r.header.Get("X-RateLimit-Remaining") != "999" || r.header.Get("X-RateLimit-Reset") != "0" {
		t.Fatalf("rate headers: %v", r.header)
	}
	// Bare object, all invalid: 422.
	r = do(t, "POST", q, `{"phone":"123","message":"x"}`)
	if m := r.json(t); r.status != 422 || m["ok"] != false || m["queued"] != 0.0 || len(m["items"].([]any)) != 0 {
		t.Fatalf("422: %d %s", r.status, r.body)
	}
	for body, code := range map[string]string{`{nope`: "invalid_json", `42`: "invalid_json", `[]`: "empty_batch"} {
		if r := do(t, "POST", q, body); r.status != 400 || r.json(t)["code"] != code {
			t.Fatalf("%s: %d %s", body, r.status, r.body)
		}
	}
	r = do(t, "POST", q, items("big", 11))
	if m := r.json(t); r.status != 413 || m["code"] != "batch_too_large" || m["error"] != "Too many messages in one request (max 10)" {
		t.Fatalf("too many: %d %s", r.status, r.body)
	}

	// Quota: 2 of 5 used; 5 more -> 3 queued, 2 refused; then 402.
	r = do(t, "POST", q, items("quota", 5))
	m = r.json(t)
	if r.status != 200 || m["queued"] != 3.0 || m["failed"] != 2.0 {
		t.Fatalf("partial quota: %d %s", r.status, r.body)
	}
	for i, e := range m["errors"].([]any) {
		em := e.(map[string]any)
		if em["index"] != float64(3+i) || em["error"] != "SMS limit exceeded for this month" {
			t.Fatalf("quota errors: %s", r.body)
		}
	}
	r = do(t, "POST", q, items("over", 1))
	if m := r.json(t); r.status != 402 || m["code"] != "limit_exceeded" || m["limit"] != 5.0 || m["used"] != 5.0 {
		t.Fatalf("limit exceeded: %d %s", r.status, r.body)
	}
	acc := admin(t, "GET", fmt.Sprintf("%s/admin/v1/accounts/%d", base, id), nil).json(t)
	if acc["used"] != 5.0 || acc["limit"] != 5.0 {
		t.Fatalf("account usage: %v", acc)
	}

	// §3 FIFO hand-out with limit; invalid limits.
	g := base + "/api/" + tok + "/get_messages"
	for _, bad := range []string{"0", "-1", "abc", "1.5", ""} {
		if r := do(t, "GET", g+"?limit="+bad, nil); r.status != 400 || r.json(t)["code"] != "invalid_limit" {
			t.Fatalf("limit=%q: %d %s", bad, r.status, r.body)
		}
	}
	got := do(t, "GET", g+"?limit=2", nil).list(t)
	if len(got) != 2 || got[0]["text"] != "first" || got[1]["text"] != "second" || got[0]["hash"] != first["hash"] || got[0]["phone"] != "+1234567890" {
		t.Fatalf("first page: %v", got)
	}
	rest := do(t, "POST", g+"?limit=99999999999999999999999", nil).list(t)
	if len(rest) != 3 || rest[0]["text"] != "quota-0" || rest[2]["text"] != "quota-2" {
		t.Fatalf("rest: %v", rest)
	}
	if r := do(t, "GET", g, nil); string(r.body) != "[]" {
		t.Fatalf("drained: %s", r.body)
	}

	// §4 status.
	st := base + "/api/" + tok + "/status"
	r = do(t, "POST", st, map[string]any{"device": "A-very-long-device-name", "messages": []any{
		map[string]any{"hash": got[0]["hash"], "status": 2},
		map[string]any{"hash": got[1]["hash"], "status": 3},
		map[string]any{"hash": "0000000000000000", "status": 2},
		map[string]any{"hash": rest[0]["hash"], "status": 1},
	}})
	m = r.json(t)
	if r.status != 200 || m["ok"] != true || m["updated"] != 2.0 || len(m["errors"].([]any)) != 2 {
		t.Fatalf("status: %d %s", r.status, r.body)
	}
	errs := m["errors"].([]any)
	if e := errs[0].(map[string]any); e["index"] != 2.0 || e["error"] != "Unknown hash" {
		t.Fatalf("status errors: %s", r.body)
	}
	// Repeat same final: counted; flip: refused.
	r = do(t, "POST", st, map[string]any{"messages": []any{
		map[string]any{"hash": got[0]["hash"], "status": 2},
		map[string]any{"hash": got[1]["hash"], "status": 2},
	}})
	if m := r.json(t); m["updated"] != 1.0 || len(m["errors"].([]any)) != 1 {
		t.Fatalf("repeat/flip: %s", r.body)
	}
	if r := do(t, "POST", st, `{"device":"x"}`); r.status != 400 || r.json(t)["code"] != "invalid_body" || r.json(t)["error"] != "messages must be an array" {
		t.Fatalf("no messages: %d %s", r.status, r.body)
	}
	// Another token's hash is unknown to this one.
	_, tok2 := account(t, base, 100, 100)
	r = do(t, "POST", base+"/api/"+tok2+"/status", map[string]any{"messages": []any{map[string]any{"hash": rest[1]["hash"], "status": 2}}})
	if m := r.json(t); m["updated"] != 0.0 || m["errors"].([]any)[0].(map[string]any)["error"] != "Unknown hash" {
		t.Fatalf("foreign hash: %s", r.body)
	}

	// Idempotency-Key: the retry returns the first response; nothing new queued.
	_, tok3 := account(t, base, 100, 1000)
	q3 := base + "/api/" + tok3 + "/queue"
	r1 := do(t, "POST", q3, items("idem", 3), "Idempotency-Key", "order-1001")
	r2 := do(t, "POST", q3, items("idem", 3), "Idempotency-Key", "order-1001")
	if r1.status != 200 || r2.status != 200 || string(r1.body) != string(r2.body) {
		t.Fatalf("idempotent replay: %s vs %s", r1.body, r2.body)
	}
	if n := len(do(t, "GET", base+"/api/"+tok3+"/get_messages?limit=200", nil).list(t)); n != 3 {
		t.Fatalf("idempotent retry queued again: %d messages", n)
	}
	if r := do(t, "POST", q3, items("idem", 1), "Idempotency-Key", strings.Repeat("k", 256)); r.status != 400 {
		t.Fatalf("long key: %d", r.status)
	}

	// Rotation: the old token stops at once.
	r = admin(t, "POST", fmt.Sprintf("%s/admin/v1/accounts/%d/rotate-token", base, id), nil)
	newTok := r.json(t)["apiToken"].(string)
	if r := do(t, "GET", base+"/api/"+tok+"/get_messages", nil); r.status != 401 {
		t.Fatalf("old token after rotation: %d", r.status)
	}
	if r := do(t, "GET", base+"/api/"+newTok+"/get_messages", nil); r.status != 200 {
		t.Fatalf("new token: %d %s", r.status, r.body)
	}

	// No token in metrics.
	metrics := string(do(t, "GET", base+"/metrics", nil).body)
	for _, secret := range []string{tok, newTok, tok2, tok3, adminToken} {
		if strings.Contains(metrics, secret) {
			t.Fatal("a token appears in /metrics")
		}
	}
	if !strings.Contains(metrics, `apitosms_http_requests_total{code="200",method="POST",route="/api/:token/queue"}`) {
		t.Fatalf("http metrics missing route template:\n%s", metrics)
	}
}

func TestRateLimitWindow(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, nil)
		_, tok := account(t, p.base, 1000, 60)
		g := p.base + "/api/" + tok + "/get_messages"
		for i := 0; i < 60; i++ {
			r := do(t, "GET", g, nil)
			if r.status != 200 || r.header.Get("X-RateLimit-Remaining") != fmt.Sprint(59-i) {
				t.Fatalf("request %d: %d remaining %s", i+1, r.status, r.header.Get("X-RateLimit-Remaining"))
			}
		}
		r := do(t, "POST", p.base+"/api/"+tok+"/queue", items("x", 1))
		m := r.json(t)
		if r.status != 429 || m["code"] != "rate_limited" || m["error"] != "Rate limit exceeded" {
			t.Fatalf("61st: %d %s", r.status, r.body)
		}
		ra := r.header.Get("Retry-After")
		if ra == "" || ra == "0" || fmt.Sprint(m["retryAfter"]) != ra || r.header.Get("X-RateLimit-Remaining") != "0" || r.header.Get("X-RateLimit-Reset") != ra {
			t.Fatalf("429 headers: %v body %s", r.header, r.body)
		}
	})
}

func TestLimitsAndBodySize(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, map[string]string{"APITOSMS_INGRESS_MAX_BODY_BYTES": "300000"})
		_, tok := account(t, p.base, 100000, 1000)
		q := p.base + "/api/" + tok + "/queue"
		r := do(t, "POST", q, items("fifo", 250))
		if r.status != 200 || r.header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("queue: %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
		}
		big := `[{"phone":"1234567","message":"` + strings.Repeat("x", 310000) + `"}]`
		if r := do(t, "POST", q, big); r.status != 413 || r.json(t)["code"] != "body_too_large" {
			t.Fatalf("large body: %d %s", r.status, r.body)
		}
		g := p.base + "/api/" + tok + "/get_messages"
		if got := do(t, "GET", g, nil).list(t); len(got) != 20 || got[0]["text"] != "fifo-0" || got[19]["text"] != "fifo-19" {
			t.Fatalf("default limit: %d messages", len(got))
		}
		if got := do(t, "GET", g+"?limit=500", nil).list(t); len(got) != 200 || got[0]["text"] != "fifo-20" {
			t.Fatalf("limit above 200: %d messages", len(got))
		}
		if got := do(t, "GET", g+"?limit=%2B5", nil).list(t); len(got) != 5 || got[0]["text"] != "fifo-220" {
			t.Fatalf("limit %%2B5 (+5): %v", got)
		}
	})
}
