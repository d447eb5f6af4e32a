package app

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
)

var olderEntries = regexp.MustCompile(`href="(/console/stores/[^"]+/log\?limit=1&amp;cursor=[^"]+)"`)

// TestConsoleStores drives the merchant's Stores pages through the real
// all-in-one process: a store created through the API is listed with its
// webhook URL and an inert name, a signed delivery's decisions show in its
// log page (paged by the service's cursor), another account's store is not
// found, and the connect and delete forms are refused without their CSRF
// token (changing nothing), the secret shown once at creation.
func TestConsoleStores(t *testing.T) {
	testkit.Each(t, func(t *testing.T, tb testkit.Backend) {
		p := allInOne(t, tb, consoleEnv(t, map[string]string{"APITOSMS_READ_RATE_LIMIT": "100000"}))
		id, tok := account(t, p.base, 1000, 600)
		_, other := account(t, p.base, 1000, 600)

		inv := admin(t, "POST", fmt.Sprintf("%s/admin/v1/accounts/%d/invite", p.base, id), nil)
		if inv.status != 200 {
			t.Fatalf("invite: %d %s", inv.status, inv.body)
		}
		link, _ := url.Parse(inv.json(t)["inviteUrl"].(string))
		a := newBrowser(t, p.base)
		const password = "correct horse battery"
		if r := a.post(link.Path, url.Values{"csrf": {csrf(t, a.get(link.Path))}, "password": {password}, "confirm": {password}}); r.status != 303 {
			t.Fatalf("set password: %d %.300s", r.status, r.body)
		}

		// A store made through the API, its name a script.
		stores := p.base + "/api/" + tok + "/stores"
		const secret = "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"
		evil := `<script>alert(1)</script>Glina`
		r := do(t, "POST", stores, map[string]any{"platform": "shopify", "name": evil, "secret": secret, "defaultCountry": "PL"})
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		st := r.json(t)
		sid, hookURL := st["id"].(string), st["webhookUrl"].(string)
		sp := a.get("/console/stores")
		if sp.status != 200 || !strings.Contains(sp.body, `value="`+hookURL+`"`) || !strings.Contains(sp.body, `href="/console/stores/`+sid+`/log"`) {
			t.Fatalf("stores page: %d %.3000s", sp.status, sp.body)
		}
		if strings.Contains(sp.body, "<script>alert(1)") || !strings.Contains(sp.body, "&lt;script&gt;alert(1)&lt;/script&gt;Glina") {
			t.Fatalf("the store's name is not escaped: %.3000s", sp.body)
		}
		if strings.Contains(sp.body, secret) {
			t.Fatal("the stores page shows a secret it did not just create")
		}

		// Two signed deliveries (the second a redelivery of the same order):
		// their decisions on the log page, one entry a page when asked.
		body := payload(t, "shopify_orders_create.json")
		for _, d := range []string{"console-d1", "console-d2"} {
			if r := shopify(t, p.base+"/hooks/shopify/"+sid, secret, "orders/create", d, body); r.status != 200 {
				t.Fatalf("hook %s: %d %s", d, r.status, r.body)
			}
		}
		var log []map[string]any
		testkit.Eventually(t, 30*time.Second, "two log entries", func() bool {
			log = storeLog(t, stores+"/"+sid)
			return len(log) >= 2
		})
		lp := a.get("/console/stores/" + sid + "/log")
		if lp.status != 200 || !strings.Contains(lp.body, "&lt;script&gt;alert(1)&lt;/script&gt;Glina") || strings.Contains(lp.body, "<script>alert(1)") {
			t.Fatalf("log page: %d %.3000s", lp.status, lp.body)
		}
		for _, e := range log {
			if !strings.Contains(lp.body, `id="`+e["id"].(string)+`"`) || !strings.Contains(lp.body, ">"+e["decision"].(string)+"<") {
				t.Fatalf("log entry %v not on the page: %.4000s", e, lp.body)
			}
		}
		if !strings.Contains(lp.body, "orders/create") || !strings.Contains(lp.body, "#1042") {
			t.Fatalf("log page without the delivery: %.4000s", lp.body)
		}
		seen := map[string]bool{}
		next := "/console/stores/" + sid + "/log?limit=1"
		for range len(log) {
			pg := a.get(next)
			if pg.status != 200 {
				t.Fatalf("log page %s: %d", next, pg.status)
			}
			for _, e := range log {
				if strings.Contains(pg.body, `id="`+e["id"].(string)+`"`) {
					if seen[e["id"].(string)] {
						t.Fatalf("entry %v on two pages", e)
					}
					seen[e["id"].(string)] = true
				}
			}
			m := olderEntries.FindStringSubmatch(pg.body)
			if m == nil {
				break
			}
			next = strings.ReplaceAll(m[1], "&amp;", "&")
		}
		if len(seen) != len(log) {
			t.Fatalf("paging showed %d of %d entries", len(seen), len(log))
		}
		if r := a.get("/console/stores/" + sid + "/log?cursor=nope"); r.status != 400 {
			t.Fatalf("bad cursor: %d", r.status)
		}
		if r := a.get("/console/stores/" + sid + "/log?limit=x"); r.status != 400 {
			t.Fatalf("bad limit: %d", r.status)
		}
		// Another account's store is not found from this one, and back.
		ot := do(t, "POST", p.base+"/api/"+other+"/stores", map[string]any{"platform": "woocommerce", "name": "Other", "defaultCountry": "US"})
		if ot.status != 201 {
			t.Fatalf("other store: %d %s", ot.status, ot.body)
		}
		oid := ot.json(t)["id"].(string)
		if r := a.get("/console/stores/" + oid + "/log"); r.status != 404 {
			t.Fatalf("another account's log: %d", r.status)
		}
		if r := a.get("/console/stores"); strings.Contains(r.body, oid) {
			t.Fatal("another account's store is listed")
		}

		// Connect: refused without CSRF (nothing made), a bad platform says
		// why, then made with its secret shown once.
		count := func() int {
			return len(do(t, "GET", stores, nil).json(t)["stores"].([]any))
		}
		mc := csrf(t, sp)
		form := url.Values{"platform": {"woocommerce"}, "name": {"Loja"}, "defaultCountry": {"br"}}
		for _, c := range []string{"", "forged"} {
			f := url.Values{"platform": form["platform"], "name": form["name"], "defaultCountry": form["defaultCountry"], "csrf": {c}}
			if r := a.post("/console/stores", f); r.status != 403 {
				t.Fatalf("connect with CSRF %q: %d", c, r.status)
			}
		}
		if n := count(); n != 1 {
			t.Fatalf("%d stores after refused forms", n)
		}
		if r := a.post("/console/stores", url.Values{"csrf": {mc}, "platform": {"magento"}, "name": {"x"}, "defaultCountry": {"US"}}); r.status != 400 ||
			!strings.Contains(r.body, `class="error"`) || !strings.Contains(r.body, "platform") {
			t.Fatalf("connect with a bad platform: %d %.1000s", r.status, r.body)
		}
		form.Set("csrf", mc)
		cr := a.post("/console/stores", form)
		sm := regexp.MustCompile(`id="secret-value" class="mono" readonly value="([^"]+)"`).FindStringSubmatch(cr.body)
		if cr.status != 200 || sm == nil {
			t.Fatalf("connect: %d %.3000s", cr.status, cr.body)
		}
		var made map[string]any
		for _, s := range do(t, "GET", stores, nil).json(t)["stores"].([]any) {
			if m := s.(map[string]any); m["name"] == "Loja" {
				made = m
			}
		}
		if made == nil || made["platform"] != "woocommerce" || made["defaultCountry"] != "BR" || !strings.Contains(cr.body, made["webhookUrl"].(string)) {
			t.Fatalf("connected store %v, page %.2000s", made, cr.body)
		}
		// The shown secret is the one the shop signs with.
		ping := woo(t, made["webhookUrl"].(string), sm[1], "order.created", "console-w1", payload(t, "woocommerce_order.json"))
		if ping.status != 200 {
			t.Fatalf("delivery signed with the shown secret: %d %s", ping.status, ping.body)
		}
		if strings.Contains(a.get("/console/stores").body, sm[1]) {
			t.Fatal("the secret is shown again")
		}

		// Delete: refused without CSRF and unconfirmed, then deleted.
		del := "/console/stores/" + sid + "/delete"
		if r := a.post(del, url.Values{"confirm": {"yes"}}); r.status != 403 {
			t.Fatalf("delete without CSRF: %d", r.status)
		}
		if r := a.post(del, url.Values{"csrf": {mc}}); r.status != 400 {
			t.Fatalf("delete unconfirmed: %d", r.status)
		}
		if r := do(t, "GET", stores+"/"+sid, nil); r.status != 200 {
			t.Fatalf("store gone after refused deletes: %d", r.status)
		}
		if r := a.post("/console/stores/"+oid+"/delete", url.Values{"csrf": {mc}, "confirm": {"yes"}}); r.status != 404 {
			t.Fatalf("delete of another account's store: %d", r.status)
		}
		if r := a.post(del, url.Values{"csrf": {mc}, "confirm": {"yes"}}); r.status != 303 || r.header.Get("Location") != "/console/stores?flash=store+deleted" {
			t.Fatalf("delete: %d %v", r.status, r.header)
		}
		if r := do(t, "GET", stores+"/"+sid, nil); r.status != 404 {
			t.Fatalf("store after the delete: %d", r.status)
		}
		if r := a.get("/console/stores"); strings.Contains(r.body, sid) || !strings.Contains(r.body, "Loja") {
			t.Fatalf("stores page after the delete: %.2000s", r.body)
		}
	})
}
