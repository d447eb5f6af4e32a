package app

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
)

// hookEvent is one event a receiver got: its webhook-id and body.
type hookEvent struct {
	ID   string
	Type string         `json:"type"`
	Time string         `json:"timestamp"`
	Data map[string]any `json:"data"`
}

// hookEvents decodes what rc received (each POST verified against secret),
// by webhook-id.
func hookEvents(t *testing.T, rc *hookReceiver, secret string) map[string][]hookEvent {
	t.Helper()
	out := map[string][]hookEvent{}
	for _, r := range rc.requests() {
		verifyHook(t, secret, r)
		var ev hookEvent
		if err := json.Unmarshal(r.body, &ev); err != nil {
			t.Fatalf("event body %s: %v", r.body, err)
		}
		ev.ID = r.header.Get("webhook-id")
		out[ev.ID] = append(out[ev.ID], ev)
	}
	return out
}

// newHook registers rc for tok's events (nil: all but message.initiated)
// and returns the secret.
func newHook(t *testing.T, base, tok string, rc *hookReceiver, types []string) string {
	t.Helper()
	body := map[string]any{"url": rc.srv.URL + "/hook"}
	if types != nil {
		body["events"] = types
	}
	r := do(t, "POST", base+"/api/"+tok+"/webhooks", body)
	if r.status != 201 {
		t.Fatalf("create webhook: %d %s", r.status, r.body)
	}
	return r.json(t)["secret"].(string)
}

// Reports and cancels produce message.sent, message.failed and
// message.cancelled events carrying the §9 message object, exactly as
// tracking shows it, each once (one webhook-id per fact), signed.
func TestMessageEventsEndToEnd(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, map[string]string{"APITOSMS_WEBHOOK_ALLOW_PRIVATE": "true", "APITOSMS_QUEUE_BACKLOG_INTERVAL": "200ms"})
		_, tok := account(t, p.base, 1000, 600)
		_, other := account(t, p.base, 1000, 600)
		rc := newHookReceiver(t, 0)
		secret := newHook(t, p.base, tok, rc, nil)
		otherRC := newHookReceiver(t, 0)
		newHook(t, p.base, other, otherRC, nil)

		hashes := queueN(t, p.base, tok, items("ev", 3))
		r := do(t, "GET", p.base+"/api/"+tok+"/get_messages?limit=2", nil)
		if r.status != 200 || len(r.list(t)) != 2 {
			t.Fatalf("get_messages: %d %s", r.status, r.body)
		}
		report := map[string]any{"device": "ShopPhone", "messages": []map[string]any{
			{"hash": hashes[0], "status": 2}, {"hash": hashes[1], "status": 3}}}
		if r = do(t, "POST", p.base+"/api/"+tok+"/status", report); r.status != 200 || r.json(t)["updated"] != float64(2) {
			t.Fatalf("status: %d %s", r.status, r.body)
		}
		if r = do(t, "DELETE", p.base+"/api/"+tok+"/messages/"+hashes[2], nil); r.status != 200 {
			t.Fatalf("cancel: %d %s", r.status, r.body)
		}
		// The phone repeats its report (a retry): accepted, no new event.
		if r = do(t, "POST", p.base+"/api/"+tok+"/status", report); r.status != 200 {
			t.Fatalf("status again: %d %s", r.status, r.body)
		}

		want := map[string]struct {
			typ    string
			status float64
		}{
			"msg_" + hashes[0] + "_sent":      {"message.sent", 2},
			"msg_" + hashes[1] + "_failed":    {"message.failed", 3},
			"msg_" + hashes[2] + "_cancelled": {"message.cancelled", 5},
		}
		testkit.Eventually(t, 20*time.Second, "three message events", func() bool { return len(hookEvents(t, rc, secret)) >= 3 })
		got := hookEvents(t, rc, secret)
		if len(got) != 3 {
			t.Fatalf("events %v, want 3", got)
		}
		ts := regexp.MustCompile(tsRE)
		for id, w := range want {
			evs := got[id]
			if len(evs) != 1 {
				t.Fatalf("event %s arrived %d times; all: %v", id, len(evs), got)
			}
			ev := evs[0]
			if ev.Type != w.typ || !ts.MatchString(ev.Time) {
				t.Fatalf("event %s: %+v", id, ev)
			}
			// The data is the §9 object, byte for byte what tracking answers.
			hash := ev.Data["hash"].(string)
			tracked := do(t, "GET", p.base+"/api/"+tok+"/messages/"+hash, nil).json(t)
			if fmt.Sprint(tracked) != fmt.Sprint(ev.Data) {
				t.Fatalf("event data %v\ntracking   %v", ev.Data, tracked)
			}
			if ev.Data["status"] != w.status || ev.Data["finishedAt"] == nil || !ts.MatchString(ev.Data["finishedAt"].(string)) {
				t.Fatalf("event %s data %v", id, ev.Data)
			}
			if w.status != 5 && (ev.Data["device"] != "ShopPhone" || ev.Data["initiatedAt"] == nil) {
				t.Fatalf("event %s data %v", id, ev.Data)
			}
		}
		// The other account's endpoint got none of them.
		if n := len(otherRC.requests()); n != 0 {
			t.Fatalf("another account's endpoint got %d events", n)
		}

		// The metrics: outcomes by status (the repeated report not counted),
		// and the backlog gauges, totals over every account.
		if s, f := metric(t, p.base, `apitosms_queue_outcomes_total{status="sent"}`), metric(t, p.base, `apitosms_queue_outcomes_total{status="failed"}`); s != 1 || f != 1 {
			t.Fatalf("outcomes counted sent %v failed %v", s, f)
		}
		queueN(t, p.base, other, items("wait", 4))
		if r = do(t, "GET", p.base+"/api/"+other+"/get_messages?limit=1", nil); r.status != 200 {
			t.Fatalf("get_messages: %d", r.status)
		}
		// Now: tok has nothing pending; other has 3 waiting and 1 handed out.
		testkit.Eventually(t, 15*time.Second, "backlog gauges", func() bool {
			return metric(t, p.base, "apitosms_queue_waiting_messages") == 3 && metric(t, p.base, "apitosms_queue_initiated_messages") == 1
		})
		if age := metric(t, p.base, "apitosms_queue_oldest_waiting_seconds"); age < 0 || age > 60 {
			t.Fatalf("oldest waiting %v s", age)
		}
	})
}

// Concurrent queue requests that exhaust the quota fire quota.warning (80%)
// and quota.exhausted once each, with deterministic ids and the
// {"used","limit","month"} data; every 402 limit_exceeded answer is counted.
func TestQuotaEventsOnceEach(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, map[string]string{"APITOSMS_WEBHOOK_ALLOW_PRIVATE": "true"})
		id, tok := account(t, p.base, 10, 600)
		rc := newHookReceiver(t, 0)
		secret := newHook(t, p.base, tok, rc, []string{"quota.warning", "quota.exhausted"})

		var wg sync.WaitGroup
		var mu sync.Mutex
		statuses := map[int]int{}
		for i := range 24 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := send("POST", p.base+"/api/"+tok+"/queue", items(fmt.Sprint("q", i), 1))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				statuses[r.status]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if statuses[200] != 10 || statuses[402] != 14 {
			t.Fatalf("answers %v, want 10x200 and 14x402", statuses)
		}
		// Two more, refused before billing is asked: counted all the same.
		for range 2 {
			wantError(t, do(t, "POST", p.base+"/api/"+tok+"/queue", items("late", 3)), 402, "limit_exceeded")
		}
		if n := metric(t, p.base, "apitosms_ingress_quota_refused_requests_total"); n != 16 {
			t.Fatalf("quota refused requests counted %v, want 16", n)
		}
		if n := metric(t, p.base, "apitosms_ingress_quota_refused_messages_total"); n != 14+6 {
			t.Fatalf("quota refused messages counted %v, want 20", n)
		}

		month := time.Now().UTC().Format("2006-01")
		testkit.Eventually(t, 20*time.Second, "two quota events", func() bool { return len(hookEvents(t, rc, secret)) >= 2 })
		got := hookEvents(t, rc, secret)
		want := map[string]float64{
			fmt.Sprintf("quota.warning.%d.%s", id, month):   8,
			fmt.Sprintf("quota.exhausted.%d.%s", id, month): 10,
		}
		if len(got) != 2 {
			t.Fatalf("events %v", got)
		}
		for eid, used := range want {
			evs := got[eid]
			if len(evs) != 1 {
				t.Fatalf("event %s arrived %d times; all %v", eid, len(evs), got)
			}
			d := evs[0].Data
			if evs[0].Type+"."+fmt.Sprint(id)+"."+month != eid || d["used"] != used || d["limit"] != float64(10) || d["month"] != month || len(d) != 3 {
				t.Fatalf("event %s: %+v", eid, evs[0])
			}
		}
	})
}

// message.initiated reaches an endpoint that asks for it, once per
// hand-out, with the §9 object (status 1, initiatedAt, attempts); an
// endpoint with the default events never gets it.
func TestMessageInitiatedOnlyWhenAsked(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, map[string]string{"APITOSMS_WEBHOOK_ALLOW_PRIVATE": "true"})
		_, tok := account(t, p.base, 1000, 600)
		asks := newHookReceiver(t, 0)
		secret := newHook(t, p.base, tok, asks, []string{"message.initiated"})
		all := newHookReceiver(t, 0)
		newHook(t, p.base, tok, all, nil) // every type but message.initiated

		hashes := queueN(t, p.base, tok, items("init", 2))
		if r := do(t, "GET", p.base+"/api/"+tok+"/get_messages?limit=5", nil); r.status != 200 || len(r.list(t)) != 2 {
			t.Fatalf("get_messages: %d %s", r.status, r.body)
		}
		testkit.Eventually(t, 20*time.Second, "two message.initiated events", func() bool { return len(hookEvents(t, asks, secret)) >= 2 })
		got := hookEvents(t, asks, secret)
		for _, h := range hashes {
			evs := got["msg_"+h+"_initiated_1"]
			if len(got) != 2 || len(evs) != 1 {
				t.Fatalf("events %v", got)
			}
			d := evs[0].Data
			if evs[0].Type != "message.initiated" || d["status"] != float64(1) || d["statusName"] != "initiated" || d["initiatedAt"] == nil || d["attempts"] != float64(1) || d["finishedAt"] != nil {
				t.Fatalf("event %+v", evs[0])
			}
		}
		if n := len(all.requests()); n != 0 {
			t.Fatalf("an endpoint with the default events got %d POSTs", n)
		}
	})
}
