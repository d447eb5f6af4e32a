package app

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/apitosms/apitosms/libs/testkit"
)

// browser is a cookie-keeping HTTP client that does not follow redirects
// (the tests look at each 303 and its Set-Cookie).
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	body   string
	header http.Header
}

func (b *browser) get(path string) page {
	b.t.Helper()
	return b.send("GET", path, nil)
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	return b.send("POST", path, form)
}

func (b *browser) send(method, path string, form url.Values) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(raw), header: resp.Header}
}

// cookie returns the value of the browser's cookie name.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.base + "/console/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.base + "/console/")
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/console/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}})
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the page's first form.
func csrf(t *testing.T, p page) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF field in the page (%d): %.300s", p.status, p.body)
	}
	return m[1]
}

// signIn signs b in through the form and returns the answer.
func (b *browser) signIn(email, password string) page {
	b.t.Helper()
	tok := csrf(b.t, b.get("/console/signin"))
	return b.post("/console/signin", url.Values{"csrf": {tok}, "email": {email}, "password": {password}})
}

var apiToken = regexp.MustCompile(`value="([0-9a-f]{64})"`)

// TestConsole drives the console's flows and its security rules through
// the real all-in-one process: invite, password, sign-in, pages, CSRF,
// session fixation, cookie flags, escaping, throttling, sign-out
// everywhere, and the operator's pages.
func TestConsole(t *testing.T) {
	testkit.Each(t, func(t *testing.T, tb testkit.Backend) {
		p := allInOne(t, tb, consoleEnv(t, nil))
		id, tok := account(t, p.base, 100, 600)

		// Security headers and the "/" redirect.
		anon := newBrowser(t, p.base)
		if r := anon.get("/"); r.status != 302 || r.header.Get("Location") != "/console/" {
			t.Fatalf("GET /: %d %v", r.status, r.header)
		}
		r := anon.get("/console/signin")
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") ||
			strings.Contains(csp, "unsafe-inline") || r.status != 200 {
			t.Fatalf("sign-in page: %d CSP %q", r.status, csp)
		}
		if r := anon.get("/console/token"); r.status != 303 || r.header.Get("Location") != "/console/signin" {
			t.Fatalf("token page signed out: %d %v", r.status, r.header)
		}

		// The operator invites; the link works once.
		inv := admin(t, "POST", fmt.Sprintf("%s/admin/v1/accounts/%d/invite", p.base, id), nil)
		if inv.status != 200 {
			t.Fatalf("invite: %d %s", inv.status, inv.body)
		}
		link, _ := url.Parse(inv.json(t)["inviteUrl"].(string))
		a := newBrowser(t, p.base)
		form := a.get(link.Path)
		if form.status != 200 || !strings.Contains(form.body, "shop@example.com") {
			t.Fatalf("invite page: %d %.300s", form.status, form.body)
		}
		const password = "correct horse battery"
		set := url.Values{"csrf": {csrf(t, form)}, "password": {password}, "confirm": {password}}
		if r := a.post(link.Path, url.Values{"password": {password}, "confirm": {password}}); r.status != 403 {
			t.Fatalf("invite without CSRF token: %d", r.status)
		}
		if r := a.post(link.Path, url.Values{"csrf": set["csrf"], "password": {"short"}, "confirm": {"short"}}); r.status != 400 {
			t.Fatalf("short password: %d", r.status)
		}
		r = a.post(link.Path, set)
		if r.status != 303 || r.header.Get("Location") != "/console/" {
			t.Fatalf("set password: %d %.300s", r.status, r.body)
		}
		sc := strings.Join(r.header.Values("Set-Cookie"), "\n")
		if !strings.Contains(sc, "apitosms_session=") || !strings.Contains(strings.ToLower(sc), "httponly") ||
			!strings.Contains(strings.ToLower(sc), "samesite=lax") || strings.Contains(strings.ToLower(sc), "secure") {
			t.Fatalf("session cookie flags (http public URL): %s", sc)
		}
		if r := newBrowser(t, p.base).get(link.Path); r.status != 404 {
			t.Fatalf("used invite shown again: %d", r.status)
		}
		again := newBrowser(t, p.base)
		if r := again.post(link.Path, url.Values{"csrf": {csrf(t, again.get("/console/signin"))}, "password": {password}, "confirm": {password}}); r.status != 404 {
			t.Fatalf("used invite accepted again: %d", r.status)
		}

		// Overview shows usage; a script in a message text stays text.
		evil := `<script>alert(1)</script><img src=x onerror=alert(2)>`
		if q := do(t, "POST", p.base+"/api/"+tok+"/queue", []map[string]string{{"phone": "+15550001111", "message": evil}}); q.status != 200 {
			t.Fatalf("queue: %d %s", q.status, q.body)
		}
		ov := a.get("/console/")
		if ov.status != 200 || !strings.Contains(ov.body, "1 / 100") {
			t.Fatalf("overview: %d %.2000s", ov.status, ov.body)
		}
		for _, path := range []string{"/console/", "/console/messages"} {
			body := a.get(path).body
			if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") ||
				!strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
				t.Fatalf("%s does not escape the message text: %.3000s", path, body)
			}
		}
		if csv := a.get("/console/messages.csv"); csv.status != 200 || !strings.Contains(csv.body, "+15550001111") {
			t.Fatalf("csv: %d %s", csv.status, csv.body)
		}

		// CSRF: a rotation without the session's token is refused and
		// changes nothing.
		tp := a.get("/console/token")
		if strings.Contains(tp.body, tok) {
			t.Fatal("the token page shows an unrevealed token")
		}
		for _, f := range []url.Values{{"confirm": {"yes"}}, {"confirm": {"yes"}, "csrf": {"forged"}}} {
			if r := a.post("/console/token/rotate", f); r.status != 403 {
				t.Fatalf("rotation with CSRF %v: %d", f["csrf"], r.status)
			}
		}
		if r := do(t, "GET", p.base+"/api/"+tok+"/phones", nil); r.status != 200 {
			t.Fatalf("old token after refused rotations: %d", r.status)
		}
		// Rotate (confirmed), then reveal: the new token, in a POST's answer.
		rot := a.post("/console/token/rotate", url.Values{"csrf": {csrf(t, tp)}, "confirm": {"yes"}})
		m := apiToken.FindStringSubmatch(rot.body)
		if rot.status != 200 || m == nil || m[1] == tok {
			t.Fatalf("rotate: %d %.500s", rot.status, rot.body)
		}
		newTok := m[1]
		if r := do(t, "GET", p.base+"/api/"+tok+"/phones", nil); r.status != 401 {
			t.Fatalf("old token after rotation: %d", r.status)
		}
		if r := a.get("/console/token"); strings.Contains(r.body, newTok) || !strings.Contains(r.body, newTok[:4]+"•") {
			t.Fatalf("token page after rotation is not masked: %.500s", r.body)
		}
		if r := a.post("/console/token/reveal", url.Values{"csrf": {csrf(t, tp)}}); !strings.Contains(r.body, newTok) {
			t.Fatalf("reveal: %d %.500s", r.status, r.body)
		}

		// A refused webhook says why, on the page.
		if r := a.post("/console/webhooks", url.Values{"csrf": {csrf(t, tp)}, "url": {"ftp://example.com/x"}}); r.status != 400 ||
			!strings.Contains(r.body, `class="error"`) {
			t.Fatalf("bad webhook URL: %d %.500s", r.status, r.body)
		}

		// Session fixation: a session id planted before sign-in is not the
		// one the browser gets.
		c := newBrowser(t, p.base)
		planted := fmt.Sprintf("m%d.%s", id, strings.Repeat("A", 43))
		c.setCookie("apitosms_session", planted)
		if r := c.signIn("SHOP@example.com", password); r.status != 303 {
			t.Fatalf("sign-in: %d %.300s", r.status, r.body)
		}
		if got := c.cookie("apitosms_session"); got == "" || got == planted {
			t.Fatalf("session id after sign-in = %q (planted %q)", got, planted)
		}
		if r := c.get("/console/phones"); r.status != 200 {
			t.Fatalf("phones: %d", r.status)
		}
		// Sign out everywhere ends a's session too.
		if r := c.post("/console/signout-everywhere", url.Values{"csrf": {csrf(t, c.get("/console/"))}}); r.status != 303 {
			t.Fatalf("sign out everywhere: %d", r.status)
		}
		if r := a.get("/console/"); r.status != 303 {
			t.Fatalf("other session after sign out everywhere: %d", r.status)
		}

		// Throttling: after 5 wrong passwords the right one is refused too.
		d := newBrowser(t, p.base)
		for i := range 5 {
			if r := d.signIn("shop@example.com", "wrong password"); r.status != 401 {
				t.Fatalf("wrong password %d: %d", i, r.status)
			}
		}
		if r := d.signIn("shop@example.com", password); r.status != 429 {
			t.Fatalf("sign-in after 5 failures: %d", r.status)
		}

		// Operator pages.
		o := newBrowser(t, p.base)
		f := o.get("/console/admin/signin")
		if r := o.post("/console/admin/signin", url.Values{"csrf": {csrf(t, f)}, "token": {"wrong"}}); r.status != 401 {
			t.Fatalf("operator with a wrong token: %d", r.status)
		}
		if r := o.post("/console/admin/signin", url.Values{"csrf": {csrf(t, f)}, "token": {adminToken}}); r.status != 303 {
			t.Fatalf("operator sign-in: %d", r.status)
		}
		acc := o.get("/console/admin/accounts?query=shop")
		if acc.status != 200 || !strings.Contains(acc.body, "shop@example.com") {
			t.Fatalf("accounts: %d %.500s", acc.status, acc.body)
		}
		if r := o.post(fmt.Sprintf("/console/admin/accounts/%d/invite", id), url.Values{"csrf": {csrf(t, acc)}}); !strings.Contains(r.body, "/console/invite/") {
			t.Fatalf("operator invite: %d %.500s", r.status, r.body)
		}
		if r := o.get("/console/admin/system"); r.status != 200 || !strings.Contains(r.body, "Waiting messages") || !strings.Contains(r.body, "Consumers") {
			t.Fatalf("system: %d %.500s", r.status, r.body)
		}
		if r := o.get("/console/admin/releases"); r.status != 200 || !strings.Contains(r.body, "No version published") {
			t.Fatalf("releases: %d %.500s", r.status, r.body)
		}
		// A merchant session is not an operator's.
		if r := c.get("/console/admin/accounts"); r.status != 303 {
			t.Fatalf("merchant on operator pages: %d", r.status)
		}
		_ = newTok
	})
}

// consoleEnv fixes the server's address and public URL in advance, so the
// console reaches this server's API (test SMS, releases) at a known URL.
func consoleEnv(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	out := map[string]string{"APITOSMS_HTTP_ADDR": addr, "APITOSMS_PUBLIC_URL": "http://" + addr}
	for k, v := range env {
		out[k] = v
	}
	return out
}

// TestConsoleSecureCookies: with an https public URL the session cookie is
// Secure; the APK upload refuses a missing CSRF token.
func TestConsoleSecureCookies(t *testing.T) {
	testkit.Each(t, func(t *testing.T, tb testkit.Backend) {
		p := allInOne(t, tb, map[string]string{"APITOSMS_PUBLIC_URL": "https://sms.example.test"})
		o := newBrowser(t, p.base)
		f := o.get("/console/admin/signin")
		r := o.post("/console/admin/signin", url.Values{"csrf": {csrf(t, f)}, "token": {adminToken}})
		sc := strings.ToLower(strings.Join(r.header.Values("Set-Cookie"), "\n"))
		if r.status != 303 || !strings.Contains(sc, "apitosms_session=") || !strings.Contains(sc, "secure") ||
			!strings.Contains(sc, "httponly") || !strings.Contains(sc, "samesite=lax") {
			t.Fatalf("operator sign-in over an https public URL: %d %s", r.status, sc)
		}
		// The jar keeps Secure cookies for https only: carry it by hand.
		var session string
		for _, c := range r.header.Values("Set-Cookie") {
			if v, ok := strings.CutPrefix(c, "apitosms_session="); ok {
				session = strings.SplitN(v, ";", 2)[0]
			}
		}
		o.setCookie("apitosms_session", session)
		if r := o.get("/console/admin/accounts"); r.status != 200 {
			t.Fatalf("accounts: %d", r.status)
		}
		up := o.send("POST", "/console/admin/releases", nil)
		if up.status != 403 {
			t.Fatalf("upload without CSRF token: %d", up.status)
		}
	})
}
