package app

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/apitosms/apitosms/libs/testkit"
)

var newAccountHeading = regexp.MustCompile(`API token of the new account (\d+)`)

// TestConsoleManage drives the operator's account writes (create, set and
// end a subscription) and the merchant's webhook edit and delete through
// the real all-in-one process, each form refused without its CSRF token
// and changing nothing then; the effects are checked through the public API.
func TestConsoleManage(t *testing.T) {
	testkit.Each(t, func(t *testing.T, tb testkit.Backend) {
		p := allInOne(t, tb, consoleEnv(t, map[string]string{"APITOSMS_WEBHOOK_ALLOW_PRIVATE": "true"}))
		suffix := make([]byte, 4)
		_, _ = rand.Read(suffix)
		email := "manage-" + hex.EncodeToString(suffix) + "@example.com"

		o := newBrowser(t, p.base)
		f := o.get("/console/admin/signin")
		if r := o.post("/console/admin/signin", url.Values{"csrf": {csrf(t, f)}, "token": {adminToken}}); r.status != 303 {
			t.Fatalf("operator sign-in: %d", r.status)
		}
		acc := o.get("/console/admin/accounts")
		tok := csrf(t, acc)
		if !strings.Contains(acc.body, `action="/console/admin/accounts"`) {
			t.Fatalf("no create form on the accounts page: %.500s", acc.body)
		}

		// Create: refused without CSRF (nothing created), a bad email says
		// why, then created with its token shown once.
		create := url.Values{"name": {"Corner <b>Shop</b>"}, "email": {email}}
		for _, c := range []string{"", "forged"} {
			form := url.Values{"name": create["name"], "email": create["email"], "csrf": {c}}
			if r := o.post("/console/admin/accounts", form); r.status != 403 {
				t.Fatalf("create with CSRF %q: %d", c, r.status)
			}
		}
		if r := o.get("/console/admin/accounts?query=" + url.QueryEscape(email)); !strings.Contains(r.body, "No account matches") {
			t.Fatalf("an account was created without a CSRF token: %.500s", r.body)
		}
		if r := o.post("/console/admin/accounts", url.Values{"csrf": {tok}, "name": {"x"}, "email": {"no-at-sign"}}); r.status != 400 ||
			!strings.Contains(r.body, `class="error"`) || !strings.Contains(r.body, "email") {
			t.Fatalf("create with a bad email: %d %.500s", r.status, r.body)
		}
		// More accounts than one page holds: the new one's row is still shown.
		for i := range 26 {
			if r := admin(t, "POST", p.base+"/admin/v1/accounts", map[string]any{"name": fmt.Sprintf("Filler %d", i), "email": "filler@example.com"}); r.status != 201 {
				t.Fatalf("filler account: %d", r.status)
			}
		}
		create.Set("csrf", tok)
		r := o.post("/console/admin/accounts", create)
		m, mt := newAccountHeading.FindStringSubmatch(r.body), apiToken.FindStringSubmatch(r.body)
		if r.status != 200 || m == nil || mt == nil {
			t.Fatalf("create: %d %.1500s", r.status, r.body)
		}
		if strings.Contains(r.body, "<b>Shop</b>") {
			t.Fatal("the account name is not escaped")
		}
		id, _ := strconv.ParseInt(m[1], 10, 64)
		apiTok := mt[1]
		if !strings.Contains(r.body, fmt.Sprintf(`id="acct-%d"`, id)) || !strings.Contains(r.body, fmt.Sprintf(`action="/console/admin/accounts/%d/subscription"`, id)) {
			t.Fatalf("the new account's row is not on the page: %.3000s", r.body)
		}
		got := admin(t, "GET", fmt.Sprintf("%s/admin/v1/accounts/%d", p.base, id), nil)
		if got.status != 200 || got.json(t)["email"] != email {
			t.Fatalf("created account: %d %s", got.status, got.body)
		}
		if q := queueOne(t, p.base, apiTok); q != 402 {
			t.Fatalf("queue without a subscription: %d", q)
		}

		// Subscription: refused without CSRF, a bad limit says why, then set.
		subPath := fmt.Sprintf("/console/admin/accounts/%d/subscription", id)
		sub := url.Values{"plan": {"gold"}, "monthly_limit": {"50"}, "rate_limit": {"30"}, "expires": {"2099-12-31"}}
		if r := o.post(subPath, sub); r.status != 403 {
			t.Fatalf("subscription without CSRF: %d", r.status)
		}
		if r := o.post(subPath, url.Values{"csrf": {tok}, "plan": {"gold"}, "monthly_limit": {"lots"}}); r.status != 400 ||
			!strings.Contains(r.body, "monthlyLimit") {
			t.Fatalf("subscription with a bad limit: %d %.500s", r.status, r.body)
		}
		if r := o.post(subPath, url.Values{"csrf": {tok}, "plan": {"gold"}, "monthly_limit": {"5"}, "expires": {"31/12/2099"}}); r.status != 400 {
			t.Fatalf("subscription with a bad date: %d", r.status)
		}
		if a := admin(t, "GET", fmt.Sprintf("%s/admin/v1/accounts/%d", p.base, id), nil).json(t); a["subscription"] != nil {
			t.Fatalf("refused forms set a subscription: %v", a["subscription"])
		}
		sub.Set("csrf", tok)
		if r := o.post(subPath, sub); r.status != 303 || !strings.Contains(r.header.Get("Location"), "flash=subscription-set") {
			t.Fatalf("set subscription: %d %v", r.status, r.header)
		}
		s, _ := admin(t, "GET", fmt.Sprintf("%s/admin/v1/accounts/%d", p.base, id), nil).json(t)["subscription"].(map[string]any)
		if s["plan"] != "gold" || s["monthlyLimit"] != float64(50) || s["rateLimitPerMinute"] != float64(30) ||
			s["expiresAt"] != "2100-01-01T00:00:00+00:00" || s["active"] != true {
			t.Fatalf("subscription after the form: %v", s)
		}
		if q := queueOne(t, p.base, apiTok); q != 200 {
			t.Fatalf("queue with the new subscription: %d", q)
		}
		page := o.get("/console/admin/accounts?query=" + url.QueryEscape(email) + "&flash=subscription-set")
		if !strings.Contains(page.body, "Subscription saved.") || !strings.Contains(page.body, "1 / 50") || !strings.Contains(page.body, "30/min") {
			t.Fatalf("accounts page after the subscription: %.3000s", page.body)
		}
		// The subscription's dates on the list; the account's page: its
		// dates and the month's count in the usage history.
		started, _ := s["startedAt"].(string)
		if len(started) < 10 || !strings.Contains(page.body, "since "+started[:10]+" until 2100-01-01") {
			t.Fatalf("subscription dates (started %q) not on the accounts page: %.3000s", started, page.body)
		}
		ap := o.get(fmt.Sprintf("/console/admin/accounts/%d", id))
		if ap.status != 200 || !strings.Contains(ap.body, `<span id="expires">2100-01-01</span>`) ||
			!regexp.MustCompile(`<tr id="month-\d{4}-\d{2}"><td data-label="Month">\d{4}-\d{2}</td><td data-label="Messages">1</td>`).MatchString(ap.body) {
			t.Fatalf("account page: %d %.4000s", ap.status, ap.body)
		}
		if r := o.get("/console/admin/accounts/999999999"); r.status != 404 {
			t.Fatalf("page of an unknown account: %d", r.status)
		}

		// End: refused without CSRF and without confirmation, then ended.
		end := subPath + "/end"
		if r := o.post(end, url.Values{"confirm": {"yes"}}); r.status != 403 {
			t.Fatalf("end without CSRF: %d", r.status)
		}
		if r := o.post(end, url.Values{"csrf": {tok}}); r.status != 400 {
			t.Fatalf("end unconfirmed: %d", r.status)
		}
		if q := queueOne(t, p.base, apiTok); q != 200 {
			t.Fatalf("queue after refused ends: %d", q)
		}
		if r := o.post(end, url.Values{"csrf": {tok}, "confirm": {"yes"}}); r.status != 303 {
			t.Fatalf("end: %d %.300s", r.status, r.body)
		}
		if q := queueOne(t, p.base, apiTok); q != 402 {
			t.Fatalf("queue after the end: %d", q)
		}
		if ap := o.get(fmt.Sprintf("/console/admin/accounts/%d", id)); !strings.Contains(ap.body, "gold (ended)") || !strings.Contains(ap.body, `<span id="ended">`) {
			t.Fatalf("account page after the end: %.3000s", ap.body)
		}
		if r := o.post("/console/admin/accounts/999999999/subscription/end", url.Values{"csrf": {tok}, "confirm": {"yes"}}); r.status != 404 {
			t.Fatalf("end for an unknown account: %d", r.status)
		}
		// Set again so the merchant below can work.
		if r := o.post(subPath, sub); r.status != 303 {
			t.Fatalf("set subscription again: %d", r.status)
		}

		// The merchant of the new account: the token the console showed
		// is revealable (the console kept it sealed).
		inv := o.post(fmt.Sprintf("/console/admin/accounts/%d/invite", id), url.Values{"csrf": {tok}})
		lm := regexp.MustCompile(`value="(http[^"]+/console/invite/[^"]+)"`).FindStringSubmatch(inv.body)
		if lm == nil {
			t.Fatalf("invite: %d %.500s", inv.status, inv.body)
		}
		link, _ := url.Parse(lm[1])
		a := newBrowser(t, p.base)
		const password = "correct horse battery"
		if r := a.post(link.Path, url.Values{"csrf": {csrf(t, a.get(link.Path))}, "password": {password}, "confirm": {password}}); r.status != 303 {
			t.Fatalf("set password: %d %.300s", r.status, r.body)
		}
		tp := a.get("/console/token")
		mc := csrf(t, tp)
		if r := a.post("/console/token/reveal", url.Values{"csrf": {mc}}); !strings.Contains(r.body, apiTok) {
			t.Fatalf("reveal of the token made at creation: %d %.500s", r.status, r.body)
		}

		// Webhooks: add one, then edit and delete it through the forms.
		rc := newHookReceiver(t, 0)
		if r := a.post("/console/webhooks", url.Values{"csrf": {mc}, "url": {rc.srv.URL + "/first"}, "description": {"first"}}); r.status != 200 {
			t.Fatalf("add webhook: %d %.500s", r.status, r.body)
		}
		list := do(t, "GET", p.base+"/api/"+apiTok+"/webhooks", nil).json(t)["webhooks"].([]any)
		if len(list) != 1 {
			t.Fatalf("webhooks: %v", list)
		}
		hid := list[0].(map[string]any)["id"].(string)
		wp := a.get("/console/webhooks")
		if !strings.Contains(wp.body, `action="/console/webhooks/`+hid+`/edit"`) || !strings.Contains(wp.body, `action="/console/webhooks/`+hid+`/delete"`) {
			t.Fatalf("no edit or delete form: %.3000s", wp.body)
		}
		hook := func() map[string]any {
			t.Helper()
			return do(t, "GET", p.base+"/api/"+apiTok+"/webhooks/"+hid, nil).json(t)
		}
		editPath := "/console/webhooks/" + hid + "/edit"
		edit := url.Values{"url": {rc.srv.URL + "/second"}, "description": {"<i>second</i>"}, "event_message.sent": {"on"},
			"event_message.failed": {"on"}, "batch": {"on"}}
		if r := a.post(editPath, edit); r.status != 403 {
			t.Fatalf("edit without CSRF: %d", r.status)
		}
		if r := a.post(editPath, url.Values{"csrf": {mc}, "url": {"ftp://example.com/x"}, "enabled": {"on"}}); r.status != 400 ||
			!strings.Contains(r.body, `class="error"`) {
			t.Fatalf("edit with a bad URL: %d %.500s", r.status, r.body)
		}
		if h := hook(); h["url"] != rc.srv.URL+"/first" || h["description"] != "first" || h["enabled"] != true {
			t.Fatalf("refused edits changed the webhook: %v", h)
		}
		edit.Set("csrf", mc) // "enabled" not ticked: disabled
		if r := a.post(editPath, edit); r.status != 303 || r.header.Get("Location") != "/console/webhooks?flash=webhook+saved" {
			t.Fatalf("edit: %d %.300s", r.status, r.body)
		}
		h := hook()
		if h["url"] != rc.srv.URL+"/second" || h["description"] != "<i>second</i>" || h["enabled"] != false || h["batch"] != true ||
			fmt.Sprint(h["events"]) != "[message.sent message.failed]" {
			t.Fatalf("webhook after the edit: %v", h)
		}
		wp = a.get("/console/webhooks")
		if strings.Contains(wp.body, "<i>second</i>") || !strings.Contains(wp.body, `name="event_message.sent" checked`) ||
			strings.Contains(wp.body, `name="enabled" checked`) {
			t.Fatalf("webhooks page after the edit: %.3000s", wp.body)
		}
		// Enable again, every event (none ticked).
		if r := a.post(editPath, url.Values{"csrf": {mc}, "url": {rc.srv.URL + "/second"}, "enabled": {"on"}}); r.status != 303 {
			t.Fatalf("re-enable: %d", r.status)
		}
		if h := hook(); h["enabled"] != true || len(h["events"].([]any)) != 0 || h["batch"] != false || h["description"] != "" {
			t.Fatalf("webhook after re-enabling: %v", h)
		}

		del := "/console/webhooks/" + hid + "/delete"
		if r := a.post(del, url.Values{"confirm": {"yes"}}); r.status != 403 {
			t.Fatalf("delete without CSRF: %d", r.status)
		}
		if r := a.post(del, url.Values{"csrf": {mc}}); r.status != 400 {
			t.Fatalf("delete unconfirmed: %d", r.status)
		}
		if h := do(t, "GET", p.base+"/api/"+apiTok+"/webhooks/"+hid, nil); h.status != 200 {
			t.Fatalf("webhook after refused deletes: %d", h.status)
		}
		if r := a.post(del, url.Values{"csrf": {mc}, "confirm": {"yes"}}); r.status != 303 {
			t.Fatalf("delete: %d %.300s", r.status, r.body)
		}
		if h := do(t, "GET", p.base+"/api/"+apiTok+"/webhooks/"+hid, nil); h.status != 404 {
			t.Fatalf("webhook after delete: %d", h.status)
		}
		if r := a.post(del, url.Values{"csrf": {mc}, "confirm": {"yes"}}); r.status != 404 {
			t.Fatalf("delete again: %d", r.status)
		}
		// An operator session is not a merchant's: refused like none.
		if r := o.post(editPath, url.Values{"csrf": {tok}}); r.status != 403 {
			t.Fatalf("operator on a merchant form: %d", r.status)
		}
	})
}

// queueOne queues one SMS with tok and returns the status.
func queueOne(t *testing.T, base, tok string) int {
	t.Helper()
	return do(t, "POST", base+"/api/"+tok+"/queue", []map[string]string{{"phone": "+15550002222", "message": "hi"}}).status
}
