package app

import (
	"encoding/csv"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
)

// queueN queues items and returns their hashes in order.
func queueN(t *testing.T, base, tok string, its []map[string]string) []string {
	t.Helper()
	r := do(t, "POST", base+"/api/"+tok+"/queue", its)
	if r.status != 200 {
		t.Fatalf("queue: %d %s", r.status, r.body)
	}
	var out []string
	for _, it := range r.json(t)["items"].([]any) {
		out = append(out, it.(map[string]any)["hash"].(string))
	}
	return out
}

func wantNotFound(t *testing.T, r response, what string) {
	t.Helper()
	if m := r.json(t); r.status != 404 || m["code"] != "message_not_found" || m["error"] != "Message not found" || len(m) != 2 {
		t.Fatalf("%s: %d %s; want 404 message_not_found", what, r.status, r.body)
	}
}

func wantError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if m := r.json(t); r.status != status || m["code"] != code || m["error"] == "" {
		t.Fatalf("want %d %s, got %d %s", status, code, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("error content type %q", ct)
	}
}

var tsRE = `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$`

// The message object, lookups, history, CSV and cancel of contract §9,
// through the real HTTP server.
func TestTrackingEndToEnd(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, nil)
		base := p.base
		id, tok := account(t, base, 1000, 100000)
		_, other := account(t, base, 1000, 100000)

		hashes := queueN(t, base, tok, []map[string]string{
			{"phone": "+1 (555) 000-0001", "message": "=cmd|' /C calc'!A0"},
			{"phone": "+15550000002", "message": "second, with \"quotes\"\nand a newline"},
			{"phone": "+15550000003", "message": "third"},
			{"phone": "+15550000004", "message": "fourth"},
		})
		// Read-your-writes: a lookup right after the queue answer sees it new.
		r := do(t, "GET", base+"/api/"+tok+"/messages/"+hashes[0], nil)
		if r.status != 200 {
			t.Fatalf("lookup new: %d %s", r.status, r.body)
		}
		body := string(r.body)
		wantPrefix := `{"hash":"` + hashes[0] + `","phone":"+15550000001","text":"=cmd|' /C calc'!A0","status":0,"statusName":"new","queuedAt":"`
		if !strings.HasPrefix(body, wantPrefix) || !strings.HasSuffix(body, `","initiatedAt":null,"finishedAt":null,"device":null,"attempts":0}`) {
			t.Fatalf("new message object %s", body)
		}
		if r.header.Get("X-RateLimit-Limit") != "600" || r.header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("read window headers %v", r.header)
		}
		m := r.json(t)
		if !regexpMatch(tsRE, m["queuedAt"].(string)) {
			t.Fatalf("queuedAt %q", m["queuedAt"])
		}

		// Hand out the first three; report the first sent, the second failed.
		if r := do(t, "GET", base+"/api/"+tok+"/get_messages?limit=3", nil); r.status != 200 || len(r.list(t)) != 3 {
			t.Fatalf("get_messages: %d %s", r.status, r.body)
		}
		m = do(t, "GET", base+"/api/"+tok+"/messages/"+hashes[2], nil).json(t)
		if m["status"] != 1.0 || m["statusName"] != "initiated" || m["attempts"] != 1.0 || !regexpMatch(tsRE, fmt.Sprint(m["initiatedAt"])) || m["finishedAt"] != nil || m["device"] != nil {
			t.Fatalf("initiated message %v", m)
		}
		rep := map[string]any{"device": "Pixel-7-of-the-shop", "messages": []map[string]any{
			{"hash": hashes[0], "status": 2}, {"hash": hashes[1], "status": 3}}}
		if r := do(t, "POST", base+"/api/"+tok+"/status", rep); r.status != 200 || r.json(t)["updated"] != 2.0 {
			t.Fatalf("status: %d %s", r.status, r.body)
		}
		// Read-your-writes after a report.
		m = do(t, "GET", base+"/api/"+tok+"/messages/"+hashes[0], nil).json(t)
		if m["status"] != 2.0 || m["statusName"] != "sent" || m["device"] != "Pixel-7-of-the-" || !regexpMatch(tsRE, fmt.Sprint(m["finishedAt"])) || m["attempts"] != 1.0 {
			t.Fatalf("sent message %v", m)
		}
		m = do(t, "GET", base+"/api/"+tok+"/messages/"+hashes[1], nil).json(t)
		if m["status"] != 3.0 || m["statusName"] != "failed" || m["device"] != "Pixel-7-of-the-" {
			t.Fatalf("failed message %v", m)
		}

		// Unknown, malformed and foreign hashes are all "not found".
		wantNotFound(t, do(t, "GET", base+"/api/"+other+"/messages/"+hashes[0], nil), "foreign hash")
		wantNotFound(t, do(t, "GET", base+"/api/"+tok+"/messages/XYZ", nil), "malformed hash")
		wantNotFound(t, do(t, "GET", base+"/api/"+tok+"/messages/"+strings.ToUpper(hashes[0]), nil), "upper-case hash")
		wantNotFound(t, do(t, "GET", base+"/api/"+tok+"/messages/0123456789abcdef", nil), "unknown hash")
		wantError(t, do(t, "GET", base+"/api/"+strings.Repeat("a", 64)+"/messages/"+hashes[0], nil), 401, "invalid_token")

		// Bulk lookup: order asked, duplicates answered, the rest notFound.
		r = do(t, "POST", base+"/api/"+tok+"/messages/lookup", map[string]any{
			"hashes": []string{hashes[3], "nope", hashes[0], hashes[3], "0123456789abcdef"}})
		if r.status != 200 {
			t.Fatalf("bulk: %d %s", r.status, r.body)
		}
		lm := r.json(t)
		var got []string
		for _, x := range lm["messages"].([]any) {
			got = append(got, x.(map[string]any)["hash"].(string))
		}
		if fmt.Sprint(got) != fmt.Sprint([]string{hashes[3], hashes[0], hashes[3]}) || fmt.Sprint(lm["notFound"]) != "[nope 0123456789abcdef]" {
			t.Fatalf("bulk lookup %s", r.body)
		}
		r = do(t, "POST", base+"/api/"+other+"/messages/lookup", map[string]any{"hashes": []string{hashes[0]}})
		if r.status != 200 || string(r.body) != `{"messages":[],"notFound":["`+hashes[0]+`"]}` {
			t.Fatalf("foreign bulk: %d %s", r.status, r.body)
		}
		many := make([]string, 1001)
		for i := range many {
			many[i] = hashes[0]
		}
		wantError(t, do(t, "POST", base+"/api/"+tok+"/messages/lookup", map[string]any{"hashes": many}), 413, "batch_too_large")
		if r := do(t, "POST", base+"/api/"+tok+"/messages/lookup", map[string]any{"hashes": many[:1000]}); r.status != 200 || len(r.json(t)["messages"].([]any)) != 1000 {
			t.Fatalf("1000 hashes: %d", r.status)
		}
		for _, bad := range []string{`{"hashes":"x"}`, `[]`, `{"hashes":[1]}`, `{}`, `{"hashes":[null]}`} {
			wantError(t, do(t, "POST", base+"/api/"+tok+"/messages/lookup", bad), 400, "invalid_body")
		}
		wantError(t, do(t, "POST", base+"/api/"+tok+"/messages/lookup", `{"hashes":`), 400, "invalid_json")
		wantError(t, do(t, "POST", base+"/api/"+tok+"/messages/lookup", `{"hashes":[]}`), 400, "empty_batch")

		// Cancel: only a new message; 200 then never handed out; 409 after.
		r = do(t, "DELETE", base+"/api/"+tok+"/messages/"+hashes[3], nil)
		if m := r.json(t); r.status != 200 || m["status"] != 5.0 || m["statusName"] != "cancelled" || !regexpMatch(tsRE, fmt.Sprint(m["finishedAt"])) {
			t.Fatalf("cancel: %d %s", r.status, r.body)
		}
		if r.header.Get("X-RateLimit-Limit") != "100000" {
			t.Fatalf("cancel counted in the send window: limit header %q", r.header.Get("X-RateLimit-Limit"))
		}
		// Its quota is given back: 4 queued, 1 cancelled.
		if used := admin(t, "GET", fmt.Sprintf("%s/admin/v1/accounts/%d", base, id), nil).json(t)["used"]; used != 3.0 {
			t.Fatalf("used after cancel = %v, want 3", used)
		}
		for _, h := range []string{hashes[3], hashes[2], hashes[0]} {
			r := do(t, "DELETE", base+"/api/"+tok+"/messages/"+h, nil)
			wantError(t, r, 409, "not_cancellable")
			if r.json(t)["error"] != "Message already handed out" {
				t.Fatalf("409 sentence %s", r.body)
			}
		}
		wantNotFound(t, do(t, "DELETE", base+"/api/"+other+"/messages/"+hashes[1], nil), "foreign cancel")
		wantNotFound(t, do(t, "DELETE", base+"/api/"+tok+"/messages/zz", nil), "malformed cancel")
		if r := do(t, "GET", base+"/api/"+tok+"/get_messages", nil); r.status != 200 || string(r.body) != "[]" {
			t.Fatalf("cancelled message handed out: %s", r.body)
		}

		// History: newest first; filters; bad parameters.
		hist := func(q string) map[string]any {
			t.Helper()
			r := do(t, "GET", base+"/api/"+tok+"/messages"+q, nil)
			if r.status != 200 {
				t.Fatalf("history %s: %d %s", q, r.status, r.body)
			}
			return r.json(t)
		}
		order := func(h map[string]any) string {
			var out []string
			for _, x := range h["messages"].([]any) {
				out = append(out, x.(map[string]any)["hash"].(string))
			}
			return strings.Join(out, ",")
		}
		all := hist("")
		if order(all) != strings.Join([]string{hashes[3], hashes[2], hashes[1], hashes[0]}, ",") || all["nextCursor"] != nil {
			t.Fatalf("history %v", all)
		}
		if h := hist("?status=sent&status=3"); order(h) != hashes[1]+","+hashes[0] {
			t.Fatalf("status filter: %v", h)
		}
		if h := hist("?status=cancelled,1"); order(h) != hashes[3]+","+hashes[2] {
			t.Fatalf("status filter (comma): %v", h)
		}
		if h := hist("?phone=" + url.QueryEscape("+1 555 000 0003")); order(h) != hashes[2] {
			t.Fatalf("phone filter: %v", h)
		}
		queued, _ := time.Parse(time.RFC3339, m["queuedAt"].(string))
		from := queued.Add(-time.Minute).Format("2006-01-02T15:04:05-07:00")
		to := queued.Add(time.Minute).Format("2006-01-02T15:04:05-07:00")
		if h := hist("?from=" + from + "&to=" + url.QueryEscape(to)); len(h["messages"].([]any)) != 4 {
			t.Fatalf("from/to around queuedAt: %v", h)
		}
		if h := hist("?to=" + url.QueryEscape(from)); len(h["messages"].([]any)) != 0 {
			t.Fatalf("to before queuedAt: %v", h)
		}
		p1 := hist("?limit=3")
		if order(p1) != strings.Join([]string{hashes[3], hashes[2], hashes[1]}, ",") || p1["nextCursor"] == nil {
			t.Fatalf("page 1 %v", p1)
		}
		p2 := hist("?limit=3&cursor=" + p1["nextCursor"].(string))
		if order(p2) != hashes[0] || p2["nextCursor"] != nil {
			t.Fatalf("page 2 %v", p2)
		}
		for q, code := range map[string]string{
			"?limit=0": "invalid_limit", "?limit=x": "invalid_limit", "?limit=-1": "invalid_limit", "?limit=": "invalid_limit",
			"?cursor=nothex": "invalid_cursor", "?cursor=ABCDEF0123456789": "invalid_cursor",
			"?status=gone": "invalid_status", "?status=6": "invalid_status", "?phone=12": "invalid_phone",
			"?from=yesterday": "invalid_from", "?to=2026-13-01T00:00:00Z": "invalid_to",
		} {
			wantError(t, do(t, "GET", base+"/api/"+tok+"/messages"+q, nil), 400, code)
		}
		if h := hist("?limit=100000"); len(h["messages"].([]any)) != 4 {
			t.Fatalf("huge limit is clamped: %v", h)
		}

		// CSV: a header line and every matching row, formulas defused.
		r = do(t, "GET", base+"/api/"+tok+"/messages?limit=1&cursor="+p1["nextCursor"].(string), nil, "Accept", "text/csv")
		if r.status != 200 || r.header.Get("Content-Type") != "text/csv; charset=utf-8" {
			t.Fatalf("csv: %d %v %s", r.status, r.header, r.body)
		}
		recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
		if err != nil {
			t.Fatalf("csv %q: %v", r.body, err)
		}
		if strings.Join(recs[0], ",") != "hash,phone,text,status,statusName,queuedAt,initiatedAt,finishedAt,device,attempts" || len(recs) != 5 {
			t.Fatalf("csv records %q", recs)
		}
		last := recs[4] // oldest: the sent one
		if last[0] != hashes[0] || last[1] != "+15550000001" || last[2] != "'=cmd|' /C calc'!A0" || last[3] != "2" || last[4] != "sent" ||
			!regexpMatch(tsRE, last[5]) || !regexpMatch(tsRE, last[6]) || !regexpMatch(tsRE, last[7]) || last[8] != "Pixel-7-of-the-" || last[9] != "1" {
			t.Fatalf("csv row %q", last)
		}
		if recs[3][2] != "second, with \"quotes\"\nand a newline" || recs[1][6] != "" || recs[1][8] != "" {
			t.Fatalf("csv escaping %q", recs)
		}
	})
}

func regexpMatch(re, s string) bool {
	ok, _ := regexp.MatchString(re, s)
	return ok
}

// Paging with a cursor while new messages are queued concurrently never
// skips nor repeats one; the read window is separate from the send window.
func TestTrackingPagingWhileQueueing(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, map[string]string{"APITOSMS_READ_RATE_LIMIT": "1000"})
		base := p.base
		_, tok := account(t, base, 100000, 100000)
		var before []string
		for k := range 5 {
			before = append(before, queueN(t, base, tok, items(fmt.Sprintf("b%d", k), 40))...)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				if r, err := send("POST", base+"/api/"+tok+"/queue", items(fmt.Sprintf("n%d", k), 7)); err != nil || r.status != 200 {
					t.Errorf("concurrent queue: %v %d", err, r.status)
					return
				}
			}
		})
		seen := map[string]int{}
		var pages []string
		cursor := ""
		for {
			r := do(t, "GET", base+"/api/"+tok+"/messages?limit=17&cursor="+cursor, nil)
			if r.status != 200 {
				t.Fatalf("page: %d %s", r.status, r.body)
			}
			h := r.json(t)
			for _, x := range h["messages"].([]any) {
				hash := x.(map[string]any)["hash"].(string)
				seen[hash]++
				pages = append(pages, hash)
			}
			if h["nextCursor"] == nil {
				break
			}
			cursor = h["nextCursor"].(string)
		}
		close(stop)
		wg.Wait()
		for _, h := range before {
			if seen[h] != 1 {
				t.Fatalf("message queued before paging seen %d times", seen[h])
			}
		}
		for h, n := range seen {
			if n != 1 {
				t.Fatalf("hash %s repeated %d times", h, n)
			}
		}
		// Newest first: the oldest queued message ends the walk.
		if pages[len(pages)-1] != before[0] {
			t.Fatalf("walk ended at %s, want the oldest %s", pages[len(pages)-1], before[0])
		}
	})
}

// The read window has its own limit, shared by ingress replicas, and its
// 429 leaves the send window untouched; lookups and reports served by one
// replica are seen through the other (read-your-writes across replicas).
func TestTrackingAcrossReplicas(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		env := map[string]string{"APITOSMS_READ_RATE_LIMIT": "10"}
		core := start(t, b, env, "-target=billing,queue,status")
		in := []*proc{start(t, b, env, "-target=ingress"), start(t, b, env, "-target=ingress")}
		_, tok := account(t, core.base, 1000, 5)

		for k := range 3 {
			hashes := queueN(t, in[k%2].base, tok, items(fmt.Sprintf("r%d", k), 2))
			// Queued through one replica, looked up through the other.
			if r := do(t, "GET", in[(k+1)%2].base+"/api/"+tok+"/messages/"+hashes[1], nil); r.status != 200 || r.json(t)["status"] != 0.0 {
				t.Fatalf("lookup across replicas: %d %s", r.status, r.body)
			}
		}
		// 3 sends and 3 reads so far. The read window (10) is shared: 7 more
		// reads alternate replicas, and the 8th is refused.
		for i := range 7 {
			if r := do(t, "GET", in[i%2].base+"/api/"+tok+"/messages", nil); r.status != 200 {
				t.Fatalf("read %d: %d %s", i, r.status, r.body)
			}
		}
		r := do(t, "GET", in[1].base+"/api/"+tok+"/messages", nil)
		wantError(t, r, 429, "rate_limited")
		if r.header.Get("Retry-After") == "" || r.header.Get("X-RateLimit-Limit") != "10" || r.header.Get("X-RateLimit-Remaining") != "0" || r.json(t)["retryAfter"] == nil {
			t.Fatalf("read 429 headers %v %s", r.header, r.body)
		}
		// The send window (5) still has 2 left: get_messages and a report,
		// each through a different replica than the lookup after it.
		msgs := do(t, "GET", in[0].base+"/api/"+tok+"/get_messages?limit=1", nil)
		if msgs.status != 200 || msgs.header.Get("X-RateLimit-Remaining") != "1" {
			t.Fatalf("send window after reads refused: %d %v", msgs.status, msgs.header)
		}
		hash := msgs.list(t)[0]["hash"].(string)
		rep := map[string]any{"device": "A", "messages": []map[string]any{{"hash": hash, "status": 2}}}
		if r := do(t, "POST", in[1].base+"/api/"+tok+"/status", rep); r.status != 200 {
			t.Fatalf("report: %d %s", r.status, r.body)
		}
		// tok's reads are spent for a minute: read-your-writes after a
		// report through the other replica is checked on a second account.
		_, tok2 := account(t, core.base, 1000, 100)
		h2 := queueN(t, in[0].base, tok2, items("x", 1))[0]
		do(t, "GET", in[1].base+"/api/"+tok2+"/get_messages", nil)
		rep = map[string]any{"device": "B", "messages": []map[string]any{{"hash": h2, "status": 3}}}
		if r := do(t, "POST", in[0].base+"/api/"+tok2+"/status", rep); r.status != 200 {
			t.Fatalf("report: %d %s", r.status, r.body)
		}
		if m := do(t, "GET", in[1].base+"/api/"+tok2+"/messages/"+h2, nil).json(t); m["status"] != 3.0 || m["device"] != "B" {
			t.Fatalf("report then lookup through the other replica: %v", m)
		}
	})
}

// APITOSMS_KEEP_TEXT=false blanks a message's text once it is final;
// APITOSMS_RETENTION removes final messages after the period, on a sweep.
func TestTrackingRetentionAndKeepText(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, map[string]string{
			"APITOSMS_KEEP_TEXT": "false", "APITOSMS_RETENTION": "3s", "APITOSMS_QUEUE_SWEEP_INTERVAL": "200ms",
		})
		base := p.base
		_, tok := account(t, base, 1000, 100000)
		hashes := queueN(t, base, tok, items("keep", 3))
		do(t, "GET", base+"/api/"+tok+"/get_messages?limit=1", nil)
		rep := map[string]any{"messages": []map[string]any{{"hash": hashes[0], "status": 2}}}
		if r := do(t, "POST", base+"/api/"+tok+"/status", rep); r.status != 200 {
			t.Fatalf("report: %d %s", r.status, r.body)
		}
		if r := do(t, "DELETE", base+"/api/"+tok+"/messages/"+hashes[1], nil); r.status != 200 || r.json(t)["text"] != "" {
			t.Fatalf("cancel blanks the text: %d %s", r.status, r.body)
		}
		m := do(t, "GET", base+"/api/"+tok+"/messages/"+hashes[0], nil).json(t)
		if m["text"] != "" || m["status"] != 2.0 || m["phone"] != "+15550000000" {
			t.Fatalf("final message keeps its text: %v", m)
		}
		if m := do(t, "GET", base+"/api/"+tok+"/messages/"+hashes[2], nil).json(t); m["text"] != "keep-2" {
			t.Fatalf("waiting message lost its text: %v", m)
		}
		// After the retention period the final ones are gone, the waiting one stays.
		// Two lookups per poll count in the read window (600 a minute).
		testkit.EventuallyEvery(t, 30*time.Second, 250*time.Millisecond, "final messages removed", func() bool {
			r := do(t, "GET", base+"/api/"+tok+"/messages/"+hashes[0], nil)
			r2 := do(t, "GET", base+"/api/"+tok+"/messages/"+hashes[1], nil)
			return r.status == 404 && r2.status == 404
		})
		if r := do(t, "GET", base+"/api/"+tok+"/messages/"+hashes[2], nil); r.status != 200 {
			t.Fatalf("waiting message removed: %d", r.status)
		}
	})
}

// Invalid tracking settings stop the process with a clear error.
func TestTrackingInvalidSettings(t *testing.T) {
	b := testkit.Embedded(t)
	for env, want := range map[string]string{
		"APITOSMS_RETENTION":       "APITOSMS_RETENTION",
		"APITOSMS_KEEP_TEXT":       "APITOSMS_KEEP_TEXT",
		"APITOSMS_READ_RATE_LIMIT": "APITOSMS_READ_RATE_LIMIT",
	} {
		bad := map[string]string{"APITOSMS_RETENTION": "-1d", "APITOSMS_KEEP_TEXT": "maybe", "APITOSMS_READ_RATE_LIMIT": "0"}[env]
		err := Run(t.Context(), Runtime{Args: nil, Getenv: b.Env(map[string]string{env: bad, "APITOSMS_HTTP_ADDR": "127.0.0.1:0"}), Stdout: discard{}, Stderr: discard{}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=%s: err %v, want it named", env, bad, err)
		}
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// Answers bigger than one NATS message (long texts; an external server
// allows 1 MiB per message) come back whole: the queue stops a reply early
// and ingress asks for the rest.
func TestTrackingLargeReplies(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, nil)
		base := p.base
		_, tok := account(t, base, 10000, 100000)
		long := strings.Repeat("<&>\"", 250) // 1000 characters, each escaped in JSON
		var hashes []string
		for k := range 4 {
			its := items(fmt.Sprintf("L%d", k), 100)
			for i := range its {
				its[i]["message"] = long
			}
			hashes = append(hashes, queueN(t, base, tok, its)...)
		}
		r := do(t, "POST", base+"/api/"+tok+"/messages/lookup", map[string]any{"hashes": hashes})
		if r.status != 200 {
			t.Fatalf("lookup: %d", r.status)
		}
		msgs := r.json(t)["messages"].([]any)
		if len(msgs) != len(hashes) {
			t.Fatalf("lookup answered %d of %d", len(msgs), len(hashes))
		}
		for i, m := range msgs {
			if m.(map[string]any)["hash"] != hashes[i] || m.(map[string]any)["text"] != long {
				t.Fatalf("message %d out of order or cut", i)
			}
		}
		h := do(t, "GET", base+"/api/"+tok+"/messages?limit=500", nil).json(t)
		if len(h["messages"].([]any)) != len(hashes) || h["nextCursor"] != nil {
			t.Fatalf("history page: %d messages, next %v", len(h["messages"].([]any)), h["nextCursor"])
		}
		r = do(t, "GET", base+"/api/"+tok+"/messages", nil, "Accept", "text/csv")
		recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
		if err != nil || len(recs) != len(hashes)+1 || recs[len(recs)-1][0] != hashes[0] {
			t.Fatalf("csv: %d records, %v", len(recs), err)
		}
	})
}
