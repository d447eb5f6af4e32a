package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/services/console/internal/auth"
	"github.com/apitosms/apitosms/services/console/internal/store"
)

// addressFactor: an address may fail this many times the per-account limit
// (a shop's office shares one address).
const addressFactor = 4

var errThrottled = apperr.New(http.StatusTooManyRequests, "throttled", "Too many failed sign-ins; try again later")

func (w *Web) signInPage(c *fiber.Ctx) error {
	return w.render(c, "signin", view{Title: "Sign in", CSRF: w.formToken(c)})
}

// signIn checks email and password, throttled per account and per address;
// success starts a new session (fresh id) and drops any old cookie.
func (w *Web) signIn(c *fiber.Ctx) error {
	if err := checkForm(c); err != nil {
		return err
	}
	ctx := c.UserContext()
	email := store.NormEmail(c.FormValue("email"))
	pw := c.FormValue("password")
	keys := []string{auth.ThrottleKey("a", email), auth.ThrottleKey("ip", c.IP())}
	limits := []int{w.cfg.SignInAttempts, w.cfg.SignInAttempts * addressFactor}
	for i, k := range keys {
		n, err := w.d.Throttle.Failures(ctx, k)
		if err != nil {
			return err
		}
		if n >= limits[i] {
			c.Status(http.StatusTooManyRequests)
			return w.render(c, "signin", view{Title: "Sign in", CSRF: w.formToken(c), Error: errThrottled.Message})
		}
	}
	account, hash, ok, err := w.d.Store.Credentials(ctx, email)
	if err != nil {
		return err
	}
	if !ok {
		auth.CheckNobody(pw)
	}
	if !ok || !auth.CheckPassword(hash, pw) {
		for _, k := range keys {
			if err := w.d.Throttle.Fail(ctx, k); err != nil {
				return err
			}
		}
		c.Status(http.StatusUnauthorized)
		return w.render(c, "signin", view{Title: "Sign in", CSRF: w.formToken(c), Error: "Wrong email or password",
			Data: map[string]string{"Email": email}})
	}
	_ = w.d.Throttle.Reset(ctx, keys[0])
	return w.startSession(c, auth.Session{Kind: auth.Merchant, AccountID: account, Email: email, CreatedAt: w.now().UTC()}, "/console/")
}

// startSession replaces whatever session cookie the browser had with a new
// session (session fixation: an id planted before sign-in is never used).
func (w *Web) startSession(c *fiber.Ctx, s auth.Session, to string) error {
	if old := c.Cookies(sessionCookie); old != "" {
		_ = w.d.Sessions.Delete(c.UserContext(), old)
	}
	cookie, err := w.d.Sessions.Create(c.UserContext(), s)
	if err != nil {
		return err
	}
	w.cookie(c, sessionCookie, cookie, 0)
	return c.Redirect(to, http.StatusSeeOther)
}

func (w *Web) adminSignInPage(c *fiber.Ctx) error {
	return w.render(c, "adminsignin", view{Title: "Operator sign-in", CSRF: w.formToken(c)})
}

// adminSignIn: the operator signs in with the admin token (throttled per
// address).
func (w *Web) adminSignIn(c *fiber.Ctx) error {
	if err := checkForm(c); err != nil {
		return err
	}
	ctx := c.UserContext()
	key := auth.ThrottleKey("op", c.IP())
	n, err := w.d.Throttle.Failures(ctx, key)
	if err != nil {
		return err
	}
	if n >= w.cfg.SignInAttempts*addressFactor {
		c.Status(http.StatusTooManyRequests)
		return w.render(c, "adminsignin", view{Title: "Operator sign-in", CSRF: w.formToken(c), Error: errThrottled.Message})
	}
	want := sha256.Sum256([]byte(w.cfg.AdminToken))
	got := sha256.Sum256([]byte(strings.TrimSpace(c.FormValue("token"))))
	if w.cfg.AdminToken == "" || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		if err := w.d.Throttle.Fail(ctx, key); err != nil {
			return err
		}
		c.Status(http.StatusUnauthorized)
		return w.render(c, "adminsignin", view{Title: "Operator sign-in", CSRF: w.formToken(c), Error: "Wrong admin token"})
	}
	return w.startSession(c, auth.Session{Kind: auth.Operator, CreatedAt: w.now().UTC()}, "/console/admin/accounts")
}

var errInvite = apperr.New(http.StatusNotFound, "invite_invalid", "This invite link is unknown, used or expired; ask your operator for a new one")

func (w *Web) invitePage(c *fiber.Ctx) error {
	inv, err := w.d.Store.PeekInvite(c.UserContext(), digest(c.Params("code")), w.now().UnixMilli())
	if errors.Is(err, store.ErrInviteInvalid) {
		return errInvite
	}
	if err != nil {
		return err
	}
	return w.render(c, "invite", view{Title: "Set your password", CSRF: w.formToken(c), Data: inv})
}

// acceptInvite sets the password and consumes the invite (once), then
// signs the merchant in.
func (w *Web) acceptInvite(c *fiber.Ctx) error {
	if err := checkForm(c); err != nil {
		return err
	}
	code := digest(c.Params("code"))
	pw, again := c.FormValue("password"), c.FormValue("confirm")
	n := utf8.RuneCountInString(pw)
	var problem string
	switch {
	case n < auth.MinPasswordLen || n > auth.MaxPasswordLen:
		problem = "The password must be 10 to 256 characters"
	case pw != again:
		problem = "The two passwords differ"
	}
	if problem != "" {
		inv, err := w.d.Store.PeekInvite(c.UserContext(), code, w.now().UnixMilli())
		if err != nil {
			return errInvite
		}
		c.Status(http.StatusBadRequest)
		return w.render(c, "invite", view{Title: "Set your password", CSRF: w.formToken(c), Error: problem, Data: inv})
	}
	inv, err := w.d.Store.AcceptInvite(c.UserContext(), code, auth.HashPassword(pw), w.now().UnixMilli())
	switch {
	case errors.Is(err, store.ErrInviteInvalid):
		return errInvite
	case errors.Is(err, store.ErrEmailTaken):
		return apperr.New(http.StatusConflict, "email_taken", "Another account already signs in with this email; ask your operator")
	case err != nil:
		return err
	}
	// A new password ends the sessions opened with the old one.
	if err := w.d.Sessions.DeleteAccount(c.UserContext(), inv.AccountID); err != nil {
		return err
	}
	return w.startSession(c, auth.Session{Kind: auth.Merchant, AccountID: inv.AccountID, Email: inv.Email, CreatedAt: w.now().UTC()}, "/console/")
}

// invite makes a one-time link for account (contract §14).
func (w *Web) invite(c *fiber.Ctx, account int64) (string, time.Time, error) {
	ctx, cancel := rpcCtx(c)
	defer cancel()
	acc, err := rpc.Call[events.AccountRequest, events.AccountReply](ctx, w.d.Conn, w.d.Names.BillingAccount(),
		events.AccountRequest{AccountID: account}, rpc.Idempotent())
	if err != nil {
		return "", time.Time{}, err
	}
	r, err := w.Invite(ctx, events.InviteRequest{AccountID: acc.ID, Email: acc.Email})
	return r.InviteURL, r.ExpiresAt, err
}

// Invite answers billing's invite request (POST
// /admin/v1/accounts/{id}/invite): a new random code, stored as its SHA-256,
// replacing the account's unused invites.
func (w *Web) Invite(ctx context.Context, req events.InviteRequest) (events.InviteReply, error) {
	if req.AccountID < 1 || req.Email == "" {
		return events.InviteReply{}, errAccountNotFound
	}
	code := auth.Random(32)
	now := w.now()
	expires := now.Add(w.cfg.InviteTTL).UTC().Truncate(time.Second)
	if err := w.d.Store.CreateInvite(ctx, digest(code), req.AccountID, req.Email, now.UnixMilli(), expires.UnixMilli()); err != nil {
		return events.InviteReply{}, err
	}
	return events.InviteReply{InviteURL: strings.TrimSuffix(w.cfg.PublicURL, "/") + "/console/invite/" + code, ExpiresAt: expires}, nil
}

var errAccountNotFound = apperr.New(http.StatusNotFound, "account_not_found", "Account not found")
