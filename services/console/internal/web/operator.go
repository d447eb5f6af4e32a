package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
)

type accountsData struct {
	Accounts  []events.AccountReply
	Query     string
	Next      string
	InviteURL string
	InviteFor int64
	Expires   string
	Token     string
	TokenFor  int64
	Created   bool // Token is a new account's first token
	Problem   string
	Flash     string
	only      int64 // list this account first (a write's answer)
}

func (w *Web) accountsView(c *fiber.Ctx, d accountsData) error {
	var after int64
	if s := c.Query("cursor"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return errFilter
		}
		after = n
	}
	d.Query = c.Query("query")
	if d.only > 0 {
		// The id as query and the one before as cursor: the account is the
		// first row whatever else matches.
		d.Query, after = strconv.FormatInt(d.only, 10), d.only-1
	}
	ctx, cancel := rpcCtx(c)
	defer cancel()
	page, err := rpc.Call[events.AccountsRequest, events.AccountsReply](ctx, w.d.Conn, w.d.Names.BillingAccounts(),
		events.AccountsRequest{Query: d.Query, After: after, Limit: 25}, rpc.Idempotent())
	if err != nil {
		return err
	}
	d.Accounts = page.Accounts
	if page.Next != 0 {
		d.Next = strconv.FormatInt(page.Next, 10)
	}
	if d.Flash == "" {
		d.Flash = accountFlashes[c.Query("flash")]
	}
	return w.render(c, "accounts", view{Title: "Accounts", Session: sess(c), Nav: "accounts", Flash: d.Flash, Error: d.Problem, Data: d})
}

func (w *Web) accountsPage(c *fiber.Ctx) error { return w.accountsView(c, accountsData{}) }

func formAccount(c *fiber.Ctx) (int64, error) {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, errAccountNotFound
	}
	return id, nil
}

// inviteAccount shows a new invite link for the operator to send.
func (w *Web) inviteAccount(c *fiber.Ctx) error {
	id, err := formAccount(c)
	if err != nil {
		return err
	}
	url, expires, err := w.invite(c, id)
	if err != nil {
		return err
	}
	return w.accountsView(c, accountsData{InviteURL: url, InviteFor: id, Expires: expires.Format("2006-01-02 15:04 UTC"), only: id})
}

// operatorRotate issues a new token for an account and shows it once.
func (w *Web) operatorRotate(c *fiber.Ctx) error {
	id, err := formAccount(c)
	if err != nil {
		return err
	}
	if c.FormValue("confirm") != "yes" {
		c.Status(http.StatusBadRequest)
		return w.accountsView(c, accountsData{Problem: "Tick the box to confirm the rotation: the current token stops working at once"})
	}
	tok, err := w.rotate(c, id)
	if err != nil {
		return err
	}
	return w.accountsView(c, accountsData{Token: tok, TokenFor: id, only: id})
}

// The operator's account writes below go through this server's own operator
// API (POST /admin/v1/accounts, PUT and DELETE
// /admin/v1/accounts/{id}/subscription, contract §6) with the admin token,
// like the releases page: billing validates them, stores them and tells every
// ingress replica (its changed notifier) exactly as for a curl call.

// accountFlashes are the messages a redirect after a write may show (a fixed
// set: nothing from the query string reaches the page).
var accountFlashes = map[string]string{
	"subscription-set":   "Subscription saved.",
	"subscription-ended": "Subscription ended: the account's sends are refused (402) until a new one is set.",
}

// operatorProblem shows a refused operator write (4xx) on the accounts page
// with its status and sentence; anything else is the error page.
func (w *Web) operatorProblem(c *fiber.Ctx, err error) error {
	if e, ok := apperr.As(err); ok && e.Status < 500 {
		c.Status(e.Status)
		return w.accountsView(c, accountsData{Problem: e.Message})
	}
	return err
}

// createAccount creates an account through the operator API and shows its
// API token once. The console keeps the token sealed (as after a rotation),
// so the merchant can reveal it once signed in.
func (w *Web) createAccount(c *fiber.Ctx) error {
	in := map[string]string{"name": strings.TrimSpace(c.FormValue("name")), "email": strings.TrimSpace(c.FormValue("email"))}
	var out struct {
		ID       int64  `json:"id"`
		APIToken string `json:"apiToken"`
	}
	if err := w.callAPI(c.UserContext(), "POST", "/admin/v1/accounts", jsonBody(in), "application/json", w.cfg.AdminToken, &out); err != nil {
		return w.operatorProblem(c, err)
	}
	// Sealing is a convenience: the account exists either way, and the
	// token below is its only copy, so a failure here must not hide it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), 10*time.Second)
	defer cancel()
	flash := "Account created. Copy its API token now: it is shown once."
	if err := w.d.Store.PutToken(ctx, out.ID, w.d.Sealer.Seal(out.ID, out.APIToken), w.now().UnixMilli()); err != nil {
		w.d.Log.Error("console: keeping a new account's token", "account", out.ID, "err", err)
		flash = "Account created. Copy its API token now: it is shown once (the console could not keep a copy for the merchant's token page)."
	}
	return w.accountsView(c, accountsData{Token: out.APIToken, TokenFor: out.ID, Created: true, Flash: flash, only: out.ID})
}

var errExpires = apperr.New(http.StatusBadRequest, "invalid_request", "Expiry must be a date such as 2027-01-31")

// setSubscription replaces an account's subscription (§6 PUT): plan,
// monthly limit, optional rate limit per minute (empty: the default) and
// optional last day (the subscription ends at the following midnight UTC).
func (w *Web) setSubscription(c *fiber.Ctx) error {
	id, err := formAccount(c)
	if err != nil {
		return err
	}
	body := map[string]any{"plan": strings.TrimSpace(c.FormValue("plan"))}
	// Numbers are passed on as typed: billing answers a clear 400 for
	// anything that is not an integer in range.
	for field, key := range map[string]string{"monthlyLimit": "monthly_limit", "rateLimitPerMinute": "rate_limit"} {
		v := strings.TrimSpace(c.FormValue(key))
		if v == "" && field == "rateLimitPerMinute" {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			body[field] = n
		} else {
			body[field] = v
		}
	}
	if v := strings.TrimSpace(c.FormValue("expires")); v != "" {
		day, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return w.operatorProblem(c, errExpires)
		}
		body["expiresAt"] = day.AddDate(0, 0, 1).UTC().Format(time.RFC3339)
	}
	if err := w.callAPI(c.UserContext(), "PUT", "/admin/v1/accounts/"+strconv.FormatInt(id, 10)+"/subscription",
		jsonBody(body), "application/json", w.cfg.AdminToken, nil); err != nil {
		return w.operatorProblem(c, err)
	}
	return c.Redirect(accountsURL(id, "subscription-set"), http.StatusSeeOther)
}

// endSubscription ends an account's subscription (§6 DELETE), confirmed.
func (w *Web) endSubscription(c *fiber.Ctx) error {
	id, err := formAccount(c)
	if err != nil {
		return err
	}
	if c.FormValue("confirm") != "yes" {
		c.Status(http.StatusBadRequest)
		return w.accountsView(c, accountsData{Problem: "Tick the box to confirm: the account's sends are refused at once"})
	}
	if err := w.callAPI(c.UserContext(), "DELETE", "/admin/v1/accounts/"+strconv.FormatInt(id, 10)+"/subscription",
		nil, "", w.cfg.AdminToken, nil); err != nil {
		return w.operatorProblem(c, err)
	}
	return c.Redirect(accountsURL(id, "subscription-ended"), http.StatusSeeOther)
}

// accountsURL is the accounts page with account id first, and a flash.
func accountsURL(id int64, flash string) string {
	return "/console/admin/accounts?" + url.Values{"query": {strconv.FormatInt(id, 10)}, "cursor": {strconv.FormatInt(id-1, 10)},
		"flash": {flash}}.Encode() + "#acct-" + strconv.FormatInt(id, 10)
}
