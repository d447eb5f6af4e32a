// Package web is the console's HTTP face: server-rendered pages under
// /console/ (html/template, every asset embedded), the sign-in machinery's
// cookies and CSRF tokens, and the invites billing asks for (§14).
package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/hashid"
	"github.com/apitosms/apitosms/services/console/internal/auth"
	"github.com/apitosms/apitosms/services/console/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is what the pages need to know.
type Config struct {
	PublicURL      string        // base of invite links; https makes cookies Secure
	AdminToken     string        // operator sign-in (empty: refused)
	InviteTTL      time.Duration // contract §14: 7 days
	SignInAttempts int           // failed sign-ins per account within the throttle window
	APIURL         string        // this server's public API, for test SMS and releases
}

// Deps are the console's collaborators.
type Deps struct {
	Conn     *nats.Conn
	Names    events.Names
	Store    *store.Store
	Sessions *auth.Sessions
	Throttle *auth.Throttle
	Sealer   *auth.Sealer
	Hashes   *hashid.Codec
	JS       jetstream.JetStream
	Log      *slog.Logger
}

// Web serves the console.
type Web struct {
	cfg    Config
	d      Deps
	pages  map[string]*template.Template
	secure bool
	client *http.Client
	now    func() time.Time
}

// Cookie names.
const (
	sessionCookie = "apitosms_session"
	formCookie    = "apitosms_form" // CSRF token of the forms shown before sign-in
)

// New parses the templates.
func New(cfg Config, d Deps) (*Web, error) {
	w := &Web{cfg: cfg, d: d, pages: map[string]*template.Template{},
		secure: strings.HasPrefix(cfg.PublicURL, "https://"), client: &http.Client{}, now: time.Now}
	if w.cfg.APIURL == "" {
		w.cfg.APIURL = cfg.PublicURL
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		w.pages[base] = t
	}
	return w, nil
}

// Routes mounts the console: "/" redirects to /console/, the pages and
// the assets.
func (w *Web) Routes(r fiber.Router) {
	r.Get("/", func(c *fiber.Ctx) error { return c.Redirect("/console/", http.StatusFound) })

	g := r.Group("/console", w.headers)
	g.Get("/static/:name", w.static)
	g.Get("/", w.home)
	g.Get("/signin", w.signInPage)
	g.Post("/signin", w.signIn)
	g.Get("/invite/:code", w.invitePage)
	g.Post("/invite/:code", w.acceptInvite)
	g.Get("/admin/signin", w.adminSignInPage)
	g.Post("/admin/signin", w.adminSignIn)
	g.Post("/signout", w.signOut)

	// Merchant pages, then operator pages: each route names its guard
	// (a group with middleware would guard every path under its prefix).
	g.Post("/signout-everywhere", w.merchant, w.signOutEverywhere)
	g.Get("/token", w.merchant, w.tokenPage)
	g.Post("/token/reveal", w.merchant, w.revealToken)
	g.Post("/token/rotate", w.merchant, w.rotateToken)
	g.Get("/messages", w.merchant, w.messagesPage)
	g.Get("/messages.csv", w.merchant, w.messagesCSV)
	g.Post("/messages/:hash/cancel", w.merchant, w.cancelMessage)
	g.Get("/phones", w.merchant, w.phonesPage)
	g.Get("/webhooks", w.merchant, w.webhooksPage)
	g.Post("/webhooks", w.merchant, w.createWebhook)
	g.Post("/webhooks/:id/test", w.merchant, w.testWebhook)
	g.Post("/webhooks/:id/rotate", w.merchant, w.rotateWebhook)
	g.Post("/webhooks/:id/edit", w.merchant, w.editWebhook)
	g.Post("/webhooks/:id/delete", w.merchant, w.deleteWebhook)
	g.Get("/stores", w.merchant, w.storesPage)
	g.Post("/stores", w.merchant, w.createStore)
	g.Get("/stores/:id/log", w.merchant, w.storeLog)
	g.Post("/stores/:id/delete", w.merchant, w.deleteStore)
	g.Get("/stores/:id", w.merchant, w.storeEdit)
	g.Post("/stores/:id/settings", w.merchant, w.saveStoreSettings)
	g.Post("/stores/:id/templates/:event", w.merchant, w.storeTemplateForm)
	g.Get("/optouts", w.merchant, w.optOuts)
	g.Post("/optouts", w.merchant, w.addOptOuts)
	g.Post("/optouts/remove", w.merchant, w.removeOptOut)
	g.Post("/optouts/import", w.merchant, w.importOptOuts)
	g.Get("/settings", w.merchant, w.settingsPage)
	g.Post("/settings", w.merchant, w.saveSettings)
	g.Post("/send-test", w.merchant, w.sendTest)
	g.Get("/admin/releases", w.operator, w.releasesPage)
	g.Post("/admin/releases", w.operatorQueryCSRF, w.uploadRelease)
	g.Post("/admin/releases/:code/activate", w.operator, w.activateRelease)
	g.Post("/admin/releases/:code/delete", w.operator, w.deleteRelease)
	g.Get("/admin/system", w.operator, w.systemPage)
	g.Get("/admin/accounts", w.operator, w.accountsPage)
	g.Get("/admin/accounts/:id", w.operator, w.accountPage)
	g.Post("/admin/accounts/:id/invite", w.operator, w.inviteAccount)
	g.Post("/admin/accounts/:id/rotate-token", w.operator, w.operatorRotate)
	g.Post("/admin/accounts", w.operator, w.createAccount)
	g.Post("/admin/accounts/:id/subscription", w.operator, w.setSubscription)
	g.Post("/admin/accounts/:id/subscription/end", w.operator, w.endSubscription)
}

// csp allows only the console's own assets: no inline script or style, no
// framing (clickjacking), forms posting only here.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// headers sets the security headers of every console answer.
func (w *Web) headers(c *fiber.Ctx) error {
	c.Set("Content-Security-Policy", csp)
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("X-Frame-Options", "DENY")
	if !strings.HasPrefix(c.Path(), "/console/static/") {
		c.Set("Cache-Control", "no-store")
	}
	err := c.Next()
	if err == nil {
		return nil
	}
	// Errors become a page, not the API's JSON.
	e, ok := apperr.As(err)
	if !ok {
		var fe *fiber.Error
		if errors.As(err, &fe) && fe.Code == http.StatusNotFound {
			e = apperr.ErrNotFound
		} else {
			w.d.Log.Error("console page", "path", c.Route().Path, "err", err)
			e = apperr.ErrInternal
			if apperr.Unavailable(err) {
				e = apperr.ErrUnavailable
			}
		}
	}
	c.Status(e.Status)
	return w.render(c, "error", view{Title: "Error", Session: w.session(c), Error: e.Message})
}

// static serves an embedded asset.
func (w *Web) static(c *fiber.Ctx) error {
	name := c.Params("name")
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil || strings.Contains(name, "/") {
		return apperr.ErrNotFound
	}
	switch {
	case strings.HasSuffix(name, ".css"):
		c.Type("css", "utf-8")
	case strings.HasSuffix(name, ".js"):
		c.Type("js", "utf-8")
	case strings.HasSuffix(name, ".svg"):
		c.Type("svg")
	}
	c.Set("Cache-Control", "public, max-age=3600")
	return c.Send(b)
}

// view is what every page template gets.
type view struct {
	Title   string
	Session *auth.Session
	CSRF    string
	Flash   string
	Error   string
	Nav     string
	Data    any
}

// render writes page with v (status 200 unless set).
func (w *Web) render(c *fiber.Ctx, page string, v view) error {
	t, ok := w.pages[page]
	if !ok {
		return errors.New("no template " + page)
	}
	if v.CSRF == "" && v.Session != nil {
		v.CSRF = v.Session.CSRF
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		return err
	}
	c.Type("html", "utf-8")
	return c.Send(buf.Bytes())
}

// cookie sets a console cookie: HttpOnly, SameSite=Lax, Secure when the
// public URL is https, for /console/ only.
func (w *Web) cookie(c *fiber.Ctx, name, value string, maxAge int) {
	c.Cookie(&fiber.Cookie{Name: name, Value: value, Path: "/console/", HTTPOnly: true,
		SameSite: fiber.CookieSameSiteLaxMode, Secure: w.secure, MaxAge: maxAge})
}

// formToken returns the CSRF token of the forms shown before sign-in (a
// double-submit cookie), setting it when absent.
func (w *Web) formToken(c *fiber.Ctx) string {
	if t := c.Cookies(formCookie); len(t) == 43 {
		return t
	}
	t := auth.Random(32)
	w.cookie(c, formCookie, t, 0)
	return t
}

// errCSRF refuses a form whose CSRF token is missing or wrong.
var errCSRF = apperr.New(http.StatusForbidden, "csrf", "The form expired; reload the page and try again")

// checkForm verifies a pre-sign-in form's CSRF token.
func checkForm(c *fiber.Ctx) error {
	if !same(c.Cookies(formCookie), c.FormValue("csrf")) || len(c.Cookies(formCookie)) != 43 {
		return errCSRF
	}
	return nil
}

func same(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1 && a != ""
}

// session returns the session of the request's cookie, or nil.
func (w *Web) session(c *fiber.Ctx) *auth.Session {
	v := c.Cookies(sessionCookie)
	if v == "" {
		return nil
	}
	s, err := w.d.Sessions.Get(c.UserContext(), v)
	if err != nil {
		return nil
	}
	return &s
}

// requireKind guards a group: a session of kind, and on every POST its
// CSRF token.
func (w *Web) requireKind(kind, signin string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		s := w.session(c)
		if s == nil || s.Kind != kind {
			if c.Method() == fiber.MethodGet {
				return c.Redirect(signin, http.StatusSeeOther)
			}
			return errCSRF
		}
		if c.Method() == fiber.MethodPost && !same(s.CSRF, c.FormValue("csrf")) {
			return errCSRF
		}
		c.Locals("session", s)
		return c.Next()
	}
}

func (w *Web) merchant(c *fiber.Ctx) error {
	return w.requireKind(auth.Merchant, "/console/signin")(c)
}

func (w *Web) operator(c *fiber.Ctx) error {
	return w.requireKind(auth.Operator, "/console/admin/signin")(c)
}

// operatorQueryCSRF guards the APK upload: an operator session whose CSRF
// token is in the query (the multipart body is streamed on unread).
func (w *Web) operatorQueryCSRF(c *fiber.Ctx) error {
	s := w.session(c)
	if s == nil || s.Kind != "o" || !same(s.CSRF, c.Query("csrf")) {
		return errCSRF
	}
	c.Locals("session", s)
	return c.Next()
}

func sess(c *fiber.Ctx) *auth.Session { s, _ := c.Locals("session").(*auth.Session); return s }

// home sends a visitor where they belong.
func (w *Web) home(c *fiber.Ctx) error {
	s := w.session(c)
	switch {
	case s == nil:
		return c.Redirect("/console/signin", http.StatusSeeOther)
	case s.Kind == auth.Operator:
		return c.Redirect("/console/admin/accounts", http.StatusSeeOther)
	}
	return w.overview(c, s)
}

// signOut ends this browser's session.
func (w *Web) signOut(c *fiber.Ctx) error {
	s := w.session(c)
	if s == nil || !same(s.CSRF, c.FormValue("csrf")) {
		return errCSRF
	}
	if err := w.d.Sessions.Delete(c.UserContext(), c.Cookies(sessionCookie)); err != nil {
		return err
	}
	w.cookie(c, sessionCookie, "", -1)
	if s.Kind == auth.Operator {
		return c.Redirect("/console/admin/signin", http.StatusSeeOther)
	}
	return c.Redirect("/console/signin", http.StatusSeeOther)
}

// signOutEverywhere ends every session of the merchant's account.
func (w *Web) signOutEverywhere(c *fiber.Ctx) error {
	if err := w.d.Sessions.DeleteAccount(c.UserContext(), sess(c).AccountID); err != nil {
		return err
	}
	w.cookie(c, sessionCookie, "", -1)
	return c.Redirect("/console/signin", http.StatusSeeOther)
}

// digest is the stored form of an invite code.
func digest(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// rpcCtx bounds a page's calls.
func rpcCtx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), 10*time.Second)
}
