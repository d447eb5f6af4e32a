package app

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
)

// phones lists tok's phones by device.
func phones(t *testing.T, base, tok string) map[string]map[string]any {
	t.Helper()
	r := do(t, "GET", base+"/api/"+tok+"/phones", nil)
	if r.status != 200 || r.header.Get("X-RateLimit-Limit") != "600" {
		t.Fatalf("phones: %d %s %v", r.status, r.body, r.header)
	}
	out := map[string]map[string]any{}
	for _, p := range r.json(t)["phones"].([]any) {
		m := p.(map[string]any)
		out[m["device"].(string)] = m
	}
	return out
}

// Phones (§11) are known from the device of pulls and reports: the list
// shows their times, the day's counts and online; a phone silent past
// APITOSMS_PHONE_OFFLINE_AFTER while messages wait fires phone.offline once,
// and phone.online when it is back. Sightings reach the queue in batches.
func TestPhonesEndToEnd(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, map[string]string{"APITOSMS_WEBHOOK_ALLOW_PRIVATE": "true", "APITOSMS_PHONE_OFFLINE_AFTER": "3s"})
		_, tok := account(t, p.base, 1000, 600)
		_, other := account(t, p.base, 1000, 600)
		rc := newHookReceiver(t, 0)
		secret := newHook(t, p.base, tok, rc, []string{"phone.offline", "phone.online"})
		api := p.base + "/api/" + tok

		if got := phones(t, p.base, tok); len(got) != 0 {
			t.Fatalf("phones before any pull: %v", got)
		}
		queueN(t, p.base, tok, items("ph", 5))
		// A device name follows §4's rules: cut to 15 characters.
		long := "PhoneA-" + strings.Repeat("x", 20)
		r := do(t, "GET", api+"/get_messages?limit=2&device="+long, nil)
		pulled := r.list(t)
		if r.status != 200 || len(pulled) != 2 {
			t.Fatalf("pull A: %d %s", r.status, r.body)
		}
		if r = do(t, "POST", api+"/get_messages?limit=1&device=PhoneB", nil); r.status != 200 || len(r.list(t)) != 1 {
			t.Fatalf("pull B: %d %s", r.status, r.body)
		}
		report := map[string]any{"device": long, "messages": []map[string]any{
			{"hash": pulled[0]["hash"], "status": 2}, {"hash": pulled[1]["hash"], "status": 3}}}
		if r = do(t, "POST", api+"/status", report); r.status != 200 || r.json(t)["updated"] != float64(2) {
			t.Fatalf("status: %d %s", r.status, r.body)
		}
		a := long[:15]
		var got map[string]map[string]any
		testkit.EventuallyEvery(t, 15*time.Second, 200*time.Millisecond, "both phones listed with A's counts", func() bool {
			got = phones(t, p.base, tok)
			return len(got) == 2 && got[a] != nil && got[a]["sentToday"] == float64(1) && got[a]["lastReportAt"] != nil
		})
		ts := regexpMatch
		pa, pb := got[a], got["PhoneB"]
		if pa["failedToday"] != float64(1) || pa["online"] != true || !ts(tsRE, pa["lastPullAt"].(string)) || !ts(tsRE, pa["lastSeenAt"].(string)) || len(pa) != 7 {
			t.Fatalf("phone A %v", pa)
		}
		if pb["lastReportAt"] != nil || pb["sentToday"] != float64(0) || pb["online"] != true || pb["lastSeenAt"] != pb["lastPullAt"] {
			t.Fatalf("phone B %v", pb)
		}
		if o := phones(t, p.base, other); len(o) != 0 {
			t.Fatalf("another token sees %v", o)
		}

		// Silent past 3 s while two messages wait: offline, once each.
		offA, offB := 0, 0
		testkit.Eventually(t, 20*time.Second, "phone.offline for both", func() bool {
			offA, offB = 0, 0
			for _, evs := range hookEvents(t, rc, secret) {
				for _, ev := range evs {
					if ev.Type == "phone.offline" && ev.Data["device"] == a {
						offA++
					}
					if ev.Type == "phone.offline" && ev.Data["device"] == "PhoneB" {
						offB++
					}
				}
			}
			return offA >= 1 && offB >= 1
		})
		if offA != 1 || offB != 1 {
			t.Fatalf("offline events: A %d, B %d", offA, offB)
		}
		if got = phones(t, p.base, tok); got[a]["online"] != false || got["PhoneB"]["online"] != false {
			t.Fatalf("offline phones listed online: %v", got)
		}
		// A comes back and takes everything (nothing waits: no new offline).
		if r = do(t, "GET", api+"/get_messages?limit=10&device="+long, nil); r.status != 200 || len(r.list(t)) != 2 {
			t.Fatalf("pull A again: %d %s", r.status, r.body)
		}
		testkit.Eventually(t, 20*time.Second, "phone.online for A", func() bool {
			for _, evs := range hookEvents(t, rc, secret) {
				if evs[0].Type == "phone.online" {
					return true
				}
			}
			return false
		})
		types := map[string]int{}
		for id, evs := range hookEvents(t, rc, secret) {
			if len(evs) != 1 {
				t.Fatalf("event %s delivered %d times", id, len(evs))
			}
			ev := evs[0]
			types[fmt.Sprint(ev.Type, "/", ev.Data["device"])]++
			if !ts(tsRE, ev.Data["lastSeenAt"].(string)) || len(ev.Data) != 2 {
				t.Fatalf("event data %v", ev.Data)
			}
		}
		if len(types) != 3 || types["phone.online/"+a] != 1 {
			t.Fatalf("events %v", types)
		}
		if got = phones(t, p.base, tok); got[a]["online"] != true {
			t.Fatalf("phone A back but listed %v", got[a])
		}
	})
}

// Pulls do not write per request: sightings reach the queue service in one
// batch per flush interval, however many pulls there were.
func TestPhoneSightingsAreBatched(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, nil)
		_, tok := account(t, p.base, 1000, 600)
		before := metric(t, p.base, "apitosms_ingress_phone_flushes_total")
		start := time.Now()
		const pulls = 30
		for i := range pulls {
			if r := do(t, "GET", fmt.Sprintf("%s/api/%s/get_messages?device=P%d", p.base, tok, i%3), nil); r.status != 200 {
				t.Fatalf("pull: %d %s", r.status, r.body)
			}
		}
		elapsed := time.Since(start)
		testkit.EventuallyEvery(t, 10*time.Second, 200*time.Millisecond, "three phones listed", func() bool { return len(phones(t, p.base, tok)) == 3 })
		flushes := metric(t, p.base, "apitosms_ingress_phone_flushes_total") - before
		// One flush per 2 s interval at most (plus the one that listed them).
		if limit := float64(elapsed/(2*time.Second)) + 2; flushes > limit || flushes < 1 {
			t.Fatalf("%d pulls in %v took %v flushes (want 1..%v)", pulls, elapsed, flushes, limit)
		}
	})
}
