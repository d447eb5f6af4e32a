package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/apitosms/apitosms/internal/phonesim"
	"github.com/apitosms/apitosms/libs/testkit"
)

// chromium finds a headless-capable browser: $APITOSMS_CHROMIUM, else
// Debian's chromium or Google Chrome on the PATH; "" when none.
func chromium() string {
	if p := os.Getenv("APITOSMS_CHROMIUM"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// screenshotDir is where the browser test writes its screenshots:
// $APITOSMS_SCREENSHOTS, else a temporary directory.
func screenshotDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("APITOSMS_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o750); err != nil { //nolint:gosec // G703: the developer names this directory for the test run
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestConsoleInBrowser walks the console's main flows in headless Chromium
// against one all-in-one server: invite -> set password -> overview ->
// rotate and reveal the token -> a message turns "sent" after a simulated
// phone reports -> add a webhook and send a test event -> operator pages.
// Every page is captured at desktop and at 375 px width.
func TestConsoleInBrowser(t *testing.T) {
	exe := chromium()
	if exe == "" {
		t.Skip("no Chromium or Chrome binary (apt-get install chromium, or set APITOSMS_CHROMIUM): the browser tests are SKIPPED")
	}
	shots := screenshotDir(t)
	b := testkit.Embedded(t)
	p := allInOne(t, b, consoleEnv(t, map[string]string{"APITOSMS_WEBHOOK_ALLOW_PRIVATE": "true"}))
	id, apiTok := account(t, p.base, 1000, 600)
	_ = apiTok
	inv := admin(t, "POST", fmt.Sprintf("%s/admin/v1/accounts/%d/invite", p.base, id), nil)
	if inv.status != 200 {
		t.Fatalf("invite: %d %s", inv.status, inv.body)
	}
	link, _ := url.Parse(inv.json(t)["inviteUrl"].(string))

	var hooks atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), `"webhook.test"`) {
			hooks.Add(1)
		}
	}))
	defer receiver.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(ctx, 7*time.Minute) // the axe-core audits take most of it (~80 s alone, much more on a loaded machine)
	defer cancel()

	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	value := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("value of %s: %v", sel, err)
		}
		return v
	}
	axeJS, err := os.ReadFile(filepath.Join("testdata", "axe", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	// audit runs axe-core on the current page at the current width and
	// fails the test (without stopping it) on every serious or critical
	// violation, naming the rule, the elements and the rule's help.
	audited := 0
	audit := func(name string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](string(axeJS))); err != nil {
			t.Fatalf("inject axe-core on %s: %v", name, err)
		}
		found, err := chromedp.Run(ctx, chromedp.Evaluate[[]axeViolation](axeRun, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("axe.run on %s: %v", name, err)
		}
		audited++
		for _, v := range found {
			if v.Impact == "serious" || v.Impact == "critical" {
				t.Errorf("axe on %s: %s (%s) at %s: %s", name, v.ID, v.Impact, strings.Join(v.Targets, ", "), v.Help)
			}
		}
	}
	// shoot captures the current page at desktop width, then at 375 px,
	// and audits it with axe-core at both.
	shoot := func(name string) {
		t.Helper()
		for _, size := range []struct {
			suffix string
			w, h   int64
		}{{"desktop", 1280, 900}, {"phone", 375, 812}} {
			run("viewport", chromedp.EmulateViewport(size.w, size.h))
			audit(name + "-" + size.suffix)
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot %s: %v", name, err)
			}
			if err := os.WriteFile(filepath.Join(shots, name+"-"+size.suffix+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		run("reset viewport", chromedp.EmulateViewport(1280, 900))
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	// Invite -> set password -> signed in on the overview.
	const password = "correct horse battery"
	run("invite page", chromedp.Navigate(p.base+link.Path), chromedp.WaitVisible(chromedp.CSS("#password")))
	shoot("invite")
	run("set password",
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.SendKeys(chromedp.CSS("#confirm"), password),
		chromedp.Submit(chromedp.CSS("#confirm")),
		chromedp.WaitVisible(chromedp.CSS("#usage")))
	if got := text("#usage"); !strings.Contains(got, "0 / 1000") {
		t.Fatalf("usage = %q", got)
	}
	shoot("overview-empty")

	// Rotate the token (confirmed), then reveal it.
	run("token page", chromedp.Navigate(p.base+"/console/token"), chromedp.WaitVisible(chromedp.CSS("#confirm")))
	shoot("token")
	run("rotate",
		chromedp.Click(chromedp.CSS("#confirm")),
		chromedp.Submit(chromedp.CSS("#confirm")),
		chromedp.WaitVisible(chromedp.CSS("#token-value")))
	newTok := value("#token-value")
	if len(newTok) != 64 || newTok == apiTok {
		t.Fatalf("rotated token %q", newTok)
	}
	shoot("token-rotated")
	run("reveal", chromedp.Navigate(p.base+"/console/token"), chromedp.WaitVisible(chromedp.CSS("#token-masked")),
		chromedp.Click(chromedp.CSS(`form[action="/console/token/reveal"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#token-value")))
	revealed := value("#token-value")
	if revealed != newTok {
		t.Fatalf("revealed %q, want the rotated token", revealed)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(loc, newTok) {
		t.Fatal("the token is in the page's URL")
	}

	// A message with markup in it, handed to a simulated phone that reports
	// it sent: the messages page shows it "sent", the markup as text.
	q := do(t, "POST", p.base+"/api/"+newTok+"/queue", []map[string]string{
		{"phone": "+15550001234", "message": `Your order <b>#1042</b> has shipped <script>alert(1)</script>`}})
	if q.status != 200 {
		t.Fatalf("queue: %d %s", q.status, q.body)
	}
	run("messages", chromedp.Navigate(p.base+"/console/messages"), chromedp.WaitVisible(chromedp.CSS("table")))
	if got := text("td.text"); !strings.Contains(got, "<script>alert(1)</script>") {
		t.Fatalf("message text shown as %q", got)
	}
	phone := phonesim.New(phonesim.Config{URL: p.base, Token: newTok, Success: 1, Device: "Pixel-7"})
	testkit.Eventually(t, 20*time.Second, "the phone reports", func() bool {
		_, _ = phone.Poll(context.Background())
		return phone.Stats.Updated >= 1
	})
	testkit.Eventually(t, 20*time.Second, "the page shows sent", func() bool {
		run("reload", chromedp.Navigate(p.base+"/console/messages"), chromedp.WaitVisible(chromedp.CSS("table")))
		return strings.Contains(text("span.status"), "sent")
	})
	shoot("messages")
	run("overview", chromedp.Navigate(p.base+"/console/"), chromedp.WaitVisible(chromedp.CSS("#usage")))
	if got := text("#count-sent"); got != "1" {
		t.Fatalf("sent count %q", got)
	}
	shoot("overview")
	run("phones", chromedp.Navigate(p.base+"/console/phones"), chromedp.WaitVisible(chromedp.CSS("table")))
	if !strings.Contains(text("tbody"), "Pixel-7") {
		t.Fatal("phones page lacks the phone")
	}
	shoot("phones")

	// Add a webhook, see its secret once, send a test event.
	run("webhooks", chromedp.Navigate(p.base+"/console/webhooks"), chromedp.WaitVisible(chromedp.CSS("#url")),
		chromedp.SendKeys(chromedp.CSS("#url"), receiver.URL+"/hook"),
		chromedp.SendKeys(chromedp.CSS("#description"), "Shop backend"),
		chromedp.Submit(chromedp.CSS("#url")),
		chromedp.WaitVisible(chromedp.CSS("#secret-value")))
	secret := value("#secret-value")
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret %q", secret)
	}
	run("test event", chromedp.Click(chromedp.CSS(`form[action$="/test"] button`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
	testkit.Eventually(t, 20*time.Second, "the test event arrives", func() bool { return hooks.Load() >= 1 })
	run("deliveries", chromedp.Navigate(p.base+"/console/webhooks"), chromedp.WaitVisible(chromedp.CSS("table")))
	shoot("webhooks")
	// Edit it (description, only message.sent, disabled), then delete it.
	edit := `form[action$="/edit"] `
	run("open edit", chromedp.Click(chromedp.CSS("details.edit summary")), chromedp.WaitVisible(chromedp.CSS(edit+`input[name="description"]`)),
		chromedp.Clear(chromedp.CSS(edit+`input[name="description"]`)),
		chromedp.SendKeys(chromedp.CSS(edit+`input[name="description"]`), "Shop backend v2"),
		chromedp.Click(chromedp.CSS(edit+`input[name="event_message.sent"]`)),
		chromedp.Click(chromedp.CSS(edit+`input[name="enabled"]`)))
	shoot("webhook-edit")
	run("save edit", chromedp.Click(chromedp.CSS(edit+`button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if got := text("section[id^='wh-'] p"); !strings.Contains(got, "disabled") || !strings.Contains(got, "Shop backend v2") ||
		!strings.Contains(got, "events: message.sent") {
		t.Fatalf("webhook after the edit: %q", got)
	}
	run("delete", chromedp.Click(chromedp.CSS("details.edit summary")),
		chromedp.Click(chromedp.CSS(`form[action$="/delete"] input[name="confirm"]`)),
		chromedp.Click(chromedp.CSS(`form[action$="/delete"] button`)),
		chromedp.WaitNotPresent(chromedp.CSS("section[id^='wh-']")))
	if got := text(".flash"); !strings.Contains(got, "webhook deleted") {
		t.Fatalf("flash after delete: %q", got)
	}
	if l := do(t, "GET", p.base+"/api/"+newTok+"/webhooks", nil); len(l.json(t)["webhooks"].([]any)) != 0 {
		t.Fatalf("webhooks after delete: %s", l.body)
	}
	// Connect a store, preview and save one of its texts, opt a phone out.
	run("connect store", chromedp.Navigate(p.base+"/console/stores"), chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SetValue(chromedp.CSS("#platform"), "woocommerce"),
		chromedp.SendKeys(chromedp.CSS("#name"), "Glina <Ceramics>"),
		chromedp.SendKeys(chromedp.CSS("#defaultCountry"), "PL"),
		chromedp.Submit(chromedp.CSS("#name")),
		chromedp.WaitVisible(chromedp.CSS("#secret-value")))
	if got := text("tbody"); !strings.Contains(got, "Glina <Ceramics>") {
		t.Fatalf("stores page after connecting: %q", got)
	}
	shoot("stores")
	shipped := "#tpl-order_shipped "
	run("store page", chromedp.Click(chromedp.CSS(`a[href^="/console/stores/st_"]:not([href$="/log"])`)),
		chromedp.WaitVisible(chromedp.CSS(shipped+"textarea")),
		chromedp.Clear(chromedp.CSS(shipped+"textarea")),
		chromedp.SendKeys(chromedp.CSS(shipped+"textarea"), "Zamówienie {order_number} wysłane: {shop_name}"),
		chromedp.Click(chromedp.CSS(shipped+`button[value="preview"]`)),
		chromedp.WaitVisible(chromedp.CSS("#preview-order_shipped")))
	if got := text("#preview-order_shipped .encoding"); got != "UCS-2" {
		t.Fatalf("preview encoding %q", got)
	}
	if got := text("#preview-order_shipped .sms"); !strings.Contains(got, "wysłane: Glina <Ceramics>") {
		t.Fatalf("preview text %q", got)
	}
	shoot("store-preview")
	run("save text", chromedp.Click(chromedp.CSS(shipped+`button[value="save"]`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
	storePath, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	storeURL, _ := url.Parse(storePath)
	st := do(t, "GET", p.base+"/api/"+newTok+strings.TrimPrefix(storeURL.Path, "/console"), nil)
	if got := st.json(t)["templates"].(map[string]any)["order_shipped"].(map[string]any)["text"]; got != "Zamówienie {order_number} wysłane: {shop_name}" {
		t.Fatalf("saved text %v (%s)", got, st.body)
	}
	run("opt-out", chromedp.Navigate(p.base+"/console/optouts"), chromedp.WaitVisible(chromedp.CSS("#phones")),
		chromedp.SendKeys(chromedp.CSS("#phones"), "+48601234567"),
		chromedp.Submit(chromedp.CSS("#phones")),
		chromedp.WaitVisible(chromedp.CSS(".flash")))
	if got := text("#optouts tbody"); !strings.Contains(got, "+48601234567") {
		t.Fatalf("opt-outs after adding: %q", got)
	}
	shoot("optouts")

	// Send a test SMS from the console (through the merchant's token).
	run("send test", chromedp.Navigate(p.base+"/console/messages"), chromedp.WaitVisible(chromedp.CSS("#test-phone")),
		chromedp.SendKeys(chromedp.CSS("#test-phone"), "+15550009999"),
		chromedp.Submit(chromedp.CSS("#test-phone")),
		chromedp.WaitVisible(chromedp.CSS(".flash")))
	if !strings.Contains(text("tbody"), "+15550009999") {
		t.Fatal("the test SMS is not listed")
	}
	run("settings", chromedp.Navigate(p.base+"/console/settings"), chromedp.WaitVisible(chromedp.CSS("#leaseSeconds")))
	shoot("settings")
	keyboard(ctx, t, "settings", "#leaseSeconds", "#onLeaseExpiry", "#maxAttempts", `form[action="/console/settings"] button[type="submit"]`)

	// Sign out; the operator signs in with the admin token.
	run("sign out", chromedp.Click(chromedp.CSS(`form[action="/console/signout"] button`)), chromedp.WaitVisible(chromedp.CSS("#email")))
	shoot("signin")
	keyboard(ctx, t, "sign-in", "#email", "#password", `form[action="/console/signin"] button[type="submit"]`)
	run("operator sign-in page", chromedp.Navigate(p.base+"/console/admin/signin"), chromedp.WaitVisible(chromedp.CSS("#token")))
	shoot("admin-signin")
	run("operator sign-in",
		chromedp.SendKeys(chromedp.CSS("#token"), adminToken), chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#query")))
	if !strings.Contains(text("tbody"), "shop@example.com") {
		t.Fatal("accounts page lacks the account")
	}
	// Create an account (its token shown once), set a subscription, end it.
	run("create account", chromedp.SendKeys(chromedp.CSS("#new-name"), "Second Shop"),
		chromedp.SendKeys(chromedp.CSS("#new-email"), "second@example.com"),
		chromedp.Submit(chromedp.CSS("#new-email")), chromedp.WaitVisible(chromedp.CSS("#new-token")))
	if tok := value("#new-token"); len(tok) != 64 {
		t.Fatalf("new account's token %q", tok)
	}
	shoot("account-created")
	heading := text(".secret h2")
	second, err := strconv.ParseInt(heading[strings.LastIndex(heading, " ")+1:], 10, 64)
	if err != nil {
		t.Fatalf("new account heading %q", heading)
	}
	row := fmt.Sprintf("#acct-%d ", second)
	run("subscription", chromedp.Click(chromedp.CSS(row+"details.sub summary")),
		chromedp.SendKeys(chromedp.CSS(fmt.Sprintf("#plan-%d", second)), "gold"),
		chromedp.SendKeys(chromedp.CSS(fmt.Sprintf("#limit-%d", second)), "500"),
		chromedp.SendKeys(chromedp.CSS(fmt.Sprintf("#rate-%d", second)), "30"))
	shoot("account-subscription")
	run("save subscription", chromedp.Submit(chromedp.CSS(fmt.Sprintf("#plan-%d", second))), chromedp.WaitNotPresent(chromedp.CSS(".secret")))
	if got := text(row + `td[data-label="Plan"]`); got != "gold" {
		t.Fatalf("plan after the form: %q", got)
	}
	if got := text(row + `td[data-label="Used / limit"]`); got != "0 / 500" {
		t.Fatalf("limit after the form: %q", got)
	}
	run("end subscription", chromedp.Click(chromedp.CSS(row+"details.sub summary")),
		chromedp.Click(chromedp.CSS(row+`form[action$="/end"] input[name="confirm"]`)),
		chromedp.Click(chromedp.CSS(row+`form[action$="/end"] button`)),
		chromedp.WaitNotPresent(chromedp.CSS(row+`form[action$="/end"]`)))
	if got := text(row + `td[data-label="Plan"]`); got != "gold (ended)" {
		t.Fatalf("plan after the end: %q", got)
	}
	run("accounts again", chromedp.Navigate(p.base+"/console/admin/accounts"), chromedp.WaitVisible(chromedp.CSS("#query")))
	run("operator invite", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#acct-%d form[action$="/invite"] button`, id))),
		chromedp.WaitVisible(chromedp.CSS("#invite-url")))
	shoot("accounts")
	run("account page", chromedp.Navigate(fmt.Sprintf("%s/console/admin/accounts/%d", p.base, id)), chromedp.WaitVisible(chromedp.CSS("#history")))
	if got := text(`#history tbody td[data-label="Messages"]`); got != "2" { // the message the phone sent and the test SMS
		t.Fatalf("usage history: %q", got)
	}
	shoot("account")

	// Releases: upload an APK (the progress bar's XHR path), activate it.
	apk := filepath.Join(t.TempDir(), "app.apk")
	if err := os.WriteFile(apk, append([]byte("PK\x03\x04"), make([]byte, 2048)...), 0o644); err != nil {
		t.Fatal(err)
	}
	run("upload", chromedp.Navigate(p.base+"/console/admin/releases"), chromedp.WaitVisible(chromedp.CSS("#version")),
		chromedp.SendKeys(chromedp.CSS("#version"), "1.4.0"),
		chromedp.SendKeys(chromedp.CSS("#versionCode"), "14"),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{apk}),
		chromedp.Submit(chromedp.CSS("#version")),
		chromedp.WaitVisible(chromedp.CSS("#v-14")))
	run("activate", chromedp.Click(chromedp.CSS(`#v-14 form[action$="/activate"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#v-14 .badge.ok")))
	if r := do(t, "GET", p.base+"/api/app-version", nil); r.status != 200 || r.json(t)["versionCode"] != 14.0 {
		t.Fatalf("active version: %d %s", r.status, r.body)
	}
	shoot("releases")
	run("system", chromedp.Navigate(p.base+"/console/admin/system"), chromedp.WaitVisible(chromedp.CSS("table")))
	if !strings.Contains(text("tbody"), "queue") {
		t.Fatalf("system page consumers: %q", text("tbody"))
	}
	shoot("system")
	if audited < 2*21 {
		t.Fatalf("axe-core audited %d page views, want every page at both widths", audited)
	}
	t.Logf("screenshots in %s; axe-core audited %d page views", shots, audited)
}

// axeViolation is the part of an axe-core violation the failure names.
type axeViolation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
}

// axeRun runs axe-core (injected just before) on the whole document and
// answers its violations, each with the CSS selectors of the elements.
const axeRun = `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({
	id: v.id, impact: v.impact || "", help: v.help,
	targets: v.nodes.map(n => n.target.join(" "))})))`

// keyboard presses Tab from the top of the current page until every
// selector in want has had the focus (at most 30 presses) and checks that
// each, when focused, shows a focus outline: the main form controls are
// reachable by keyboard with a visible focus.
func keyboard(ctx context.Context, t *testing.T, page string, want ...string) {
	t.Helper()
	// Start from the document: blur whatever a click left focused.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < 30 && len(seen) < len(want); i++ {
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
			t.Fatalf("tab on %s: %v", page, err)
		}
		for _, sel := range want {
			st, err := chromedp.Run(ctx, chromedp.Evaluate[focusState](fmt.Sprintf(focusJS, strconv.Quote(sel))))
			if err != nil {
				t.Fatalf("focus on %s: %v", page, err)
			}
			if !st.Focused {
				continue
			}
			if st.OutlineStyle == "none" || st.OutlineWidth == "0px" {
				t.Errorf("%s: %s has the keyboard focus without a visible outline (%s %s)", page, sel, st.OutlineStyle, st.OutlineWidth)
			}
			seen[sel] = true
		}
	}
	for _, sel := range want {
		if !seen[sel] {
			t.Errorf("%s: Tab never reaches %s", page, sel)
		}
	}
}

// focusState is whether an element has the focus and its outline then.
type focusState struct {
	Focused      bool   `json:"focused"`
	OutlineStyle string `json:"outlineStyle"`
	OutlineWidth string `json:"outlineWidth"`
}

const focusJS = `(() => { const e = document.querySelector(%s); const f = !!e && e === document.activeElement;
	const s = f ? getComputedStyle(e) : {}; return {focused: f, outlineStyle: s.outlineStyle || "", outlineWidth: s.outlineWidth || ""}; })()`
