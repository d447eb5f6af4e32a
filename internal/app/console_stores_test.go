package app

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
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
		testkit.EventuallyEvery(t, 30*time.Second, 100*time.Millisecond, "two log entries", func() bool {
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

		storeEditing(t, a, p.base, tok, sid, oid, mc)
		optOutPages(t, a, p.base, tok, mc)

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

// storeEditing drives a store's settings page: texts per event previewed
// (the service's text, encoding and segments, the shop's name escaped),
// an unknown placeholder refused at save with the service's sentence in
// the form and nothing saved, a text saved; the settings refused without
// CSRF or with a bad country, then saved; another account's store 404.
func storeEditing(t *testing.T, a *browser, base, tok, sid, oid, mc string) {
	t.Helper()
	api := base + "/api/" + tok + "/stores/" + sid
	ep := a.get("/console/stores/" + sid)
	if ep.status != 200 || !strings.Contains(ep.body, `id="tpl-order_shipped"`) || !strings.Contains(ep.body, `id="tpl-admin_new_order"`) ||
		strings.Contains(ep.body, "<script>alert(1)") || !strings.Contains(ep.body, "&lt;script&gt;alert(1)&lt;/script&gt;Glina") {
		t.Fatalf("store page: %d %.3000s", ep.status, ep.body)
	}
	for _, path := range []string{"/console/stores/" + oid, "/console/stores/st_nope"} {
		if r := a.get(path); r.status != 404 {
			t.Fatalf("%s: %d", path, r.status)
		}
	}
	if r := a.post("/console/stores/"+oid+"/templates/order_paid", url.Values{"csrf": {mc}, "text": {"x"}, "action": {"save"}}); r.status != 404 {
		t.Fatalf("another account's template: %d", r.status)
	}
	stored := func() map[string]any {
		return do(t, "GET", api, nil).json(t)["templates"].(map[string]any)["order_shipped"].(map[string]any)
	}
	before := stored()
	tpl := "/console/stores/" + sid + "/templates/order_shipped"
	if r := a.post(tpl, url.Values{"text": {"Sent {order_number}"}, "action": {"save"}}); r.status != 403 {
		t.Fatalf("save without CSRF: %d", r.status)
	}
	// Preview: the service's rendering of the typed text, nothing saved.
	text := "Zamówienie {order_number} wysłane: {shop_name}"
	want := do(t, "POST", api+"/preview", map[string]any{"event": "order_shipped", "text": text}).json(t)
	pv := a.post(tpl, url.Values{"csrf": {mc}, "text": {text}, "enabled": {"yes"}, "action": {"preview"}})
	if pv.status != 200 || !strings.Contains(pv.body, `id="preview-order_shipped"`) ||
		!strings.Contains(pv.body, `class="encoding">`+want["encoding"].(string)+"<") ||
		!strings.Contains(pv.body, fmt.Sprintf(`class="segments">%v<`, want["segments"])) ||
		!strings.Contains(pv.body, "wysłane: &lt;script&gt;alert(1)&lt;/script&gt;Glina") || strings.Contains(pv.body, "<script>alert(1)") {
		t.Fatalf("preview (want %v): %d %.4000s", want, pv.status, pv.body)
	}
	if want["encoding"] != "UCS-2" {
		t.Fatalf("preview of a Polish text: %v", want)
	}
	// An unknown placeholder: refused at save, the service's sentence in
	// that form, the typed text kept, nothing saved.
	bad := a.post(tpl, url.Values{"csrf": {mc}, "text": {"Hi {nickname}"}, "enabled": {"yes"}, "action": {"save"}})
	if bad.status != 400 || !strings.Contains(bad.body, `id="problem-order_shipped"`) || !strings.Contains(bad.body, "nickname") ||
		!strings.Contains(bad.body, ">Hi {nickname}</textarea>") {
		t.Fatalf("unknown placeholder: %d %.4000s", bad.status, bad.body)
	}
	if got := stored(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("template changed by refused forms: %v, was %v", got, before)
	}
	// Saved (disabled, markup in it): the API shows it, the page escapes it.
	saved := "Order {order_number} <b>shipped</b>"
	if r := a.post(tpl, url.Values{"csrf": {mc}, "text": {saved}, "action": {"save"}}); r.status != 303 ||
		!strings.HasPrefix(r.header.Get("Location"), "/console/stores/"+sid+"?flash=") {
		t.Fatalf("save: %d %v %.1000s", r.status, r.header, r.body)
	}
	if got := stored(); got["text"] != saved || got["enabled"] != false {
		t.Fatalf("saved template: %v", got)
	}
	if r := a.get("/console/stores/" + sid); !strings.Contains(r.body, "Order {order_number} &lt;b&gt;shipped&lt;/b&gt;</textarea>") {
		t.Fatalf("saved template on the page: %.4000s", r.body)
	}

	// Settings: refused without CSRF, a bad country shown, then saved.
	set := "/console/stores/" + sid + "/settings"
	good := url.Values{"name": {"Glina 2"}, "defaultCountry": {"pl"}, "adminPhones": {"+48 601 234 567\n\n"}, "phoneFrom_shipping": {"yes"}}
	if r := a.post(set, good); r.status != 403 {
		t.Fatalf("settings without CSRF: %d", r.status)
	}
	if r := a.post(set, url.Values{"csrf": {mc}, "name": {"Glina 2"}, "defaultCountry": {"XX"}, "phoneFrom_billing": {"yes"}}); r.status != 400 ||
		!strings.Contains(r.body, `id="settings-problem"`) || !strings.Contains(r.body, "defaultCountry") {
		t.Fatalf("bad country: %d %.2000s", r.status, r.body)
	}
	if r := a.post("/console/stores/"+oid+"/settings", url.Values{"csrf": {mc}, "name": {"mine"}, "defaultCountry": {"US"}, "phoneFrom_billing": {"yes"}}); r.status != 404 {
		t.Fatalf("another account's settings: %d", r.status)
	}
	if got := do(t, "GET", api, nil).json(t); got["defaultCountry"] != "PL" || !strings.Contains(got["name"].(string), "<script>") {
		t.Fatalf("store changed by refused forms: %v", got)
	}
	good.Set("csrf", mc)
	if r := a.post(set, good); r.status != 303 {
		t.Fatalf("settings: %d %.2000s", r.status, r.body)
	}
	got := do(t, "GET", api, nil).json(t)
	if got["name"] != "Glina 2" || got["defaultCountry"] != "PL" || fmt.Sprint(got["adminPhones"]) != "[+48601234567]" || fmt.Sprint(got["phoneFrom"]) != "[shipping]" {
		t.Fatalf("settings saved as %v", got)
	}
}

// optOutPages drives the opt-out list: add (refused without CSRF, a bad
// phone shown with what was typed), CSV import (refused without CSRF),
// remove, and paging (100 a page) over the service's list.
func optOutPages(t *testing.T, a *browser, base, tok, mc string) {
	t.Helper()
	api := base + "/api/" + tok + "/opt-outs"
	list := func() string { return fmt.Sprint(do(t, "GET", api, nil).json(t)["phones"]) }
	if r := a.get("/console/optouts"); r.status != 200 || !strings.Contains(r.body, "No opted-out phone.") {
		t.Fatalf("opt-outs page: %d %.2000s", r.status, r.body)
	}
	if r := a.post("/console/optouts", url.Values{"phones": {"+48601234567"}}); r.status != 403 {
		t.Fatalf("add without CSRF: %d", r.status)
	}
	if r := a.post("/console/optouts", url.Values{"csrf": {mc}, "phones": {"+48601234567\n<b>12</b>"}}); r.status != 400 ||
		!strings.Contains(r.body, `class="error"`) || !strings.Contains(r.body, "&lt;b&gt;12&lt;/b&gt;</textarea>") {
		t.Fatalf("bad phone: %d %.2000s", r.status, r.body)
	}
	if l := list(); l != "[]" {
		t.Fatalf("opt-outs after refused forms: %s", l)
	}
	if r := a.post("/console/optouts", url.Values{"csrf": {mc}, "phones": {"+48601234567, +1 (415) 555-0132"}}); r.status != 303 ||
		!strings.Contains(r.header.Get("Location"), "flash=2+phone") {
		t.Fatalf("add: %d %v", r.status, r.header)
	}
	csvFile := "phone\n+48 512 345 678\n"
	if r := a.upload("/console/optouts/import", url.Values{}, "file", "optouts.csv", []byte(csvFile)); r.status != 403 {
		t.Fatalf("import without CSRF: %d", r.status)
	}
	if r := a.upload("/console/optouts/import", url.Values{"csrf": {mc}}, "file", "optouts.csv", []byte(csvFile)); r.status != 303 {
		t.Fatalf("import: %d %.2000s", r.status, r.body)
	}
	if l := list(); l != "[+14155550132 +48512345678 +48601234567]" {
		t.Fatalf("opt-outs after add and import: %s", l)
	}
	// html/template writes + as &#43;.
	if r := a.get("/console/optouts"); !strings.Contains(r.body, ">&#43;48512345678<") || !strings.Contains(r.body, "3 phone(s)") {
		t.Fatalf("opt-outs page: %.3000s", r.body)
	}
	if r := a.post("/console/optouts/remove", url.Values{"phone": {"+14155550132"}}); r.status != 403 {
		t.Fatalf("remove without CSRF: %d", r.status)
	}
	if r := a.post("/console/optouts/remove", url.Values{"csrf": {mc}, "phone": {"+14155550132"}}); r.status != 303 {
		t.Fatalf("remove: %d %.1000s", r.status, r.body)
	}
	if l := list(); l != "[+48512345678 +48601234567]" {
		t.Fatalf("opt-outs after remove: %s", l)
	}
	// 120 more: two pages, every phone once.
	var b strings.Builder
	for i := range 120 {
		fmt.Fprintf(&b, "+4860130%04d\n", i)
	}
	if r := a.upload("/console/optouts/import", url.Values{"csrf": {mc}}, "file", "many.csv", []byte(b.String())); r.status != 303 {
		t.Fatalf("import 120: %d %.2000s", r.status, r.body)
	}
	p1, p2 := a.get("/console/optouts"), a.get("/console/optouts?page=2")
	if !strings.Contains(p1.body, `href="/console/optouts?page=2"`) || !strings.Contains(p2.body, `href="/console/optouts?page=1"`) {
		t.Fatalf("paging links: %.4000s", p1.body)
	}
	for i := range 120 {
		ph := fmt.Sprintf(">&#43;4860130%04d<", i)
		if strings.Count(p1.body+p2.body, ph) != 1 {
			t.Fatalf("%s on %d pages", ph, strings.Count(p1.body+p2.body, ph))
		}
	}
	if r := a.get("/console/optouts?page=0"); r.status != 400 {
		t.Fatalf("page 0: %d", r.status)
	}
}

// upload posts a multipart form with one file, as a browser does.
func (b *browser) upload(path string, fields url.Values, field, name string, content []byte) page {
	b.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, vs := range fields {
		for _, v := range vs {
			_ = mw.WriteField(k, v)
		}
	}
	fw, err := mw.CreateFormFile(field, name)
	if err != nil {
		b.t.Fatal(err)
	}
	_, _ = fw.Write(content)
	if err := mw.Close(); err != nil {
		b.t.Fatal(err)
	}
	req, err := http.NewRequest("POST", b.base+path, &buf)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(raw), header: resp.Header}
}
