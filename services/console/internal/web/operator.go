package web

import (
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"

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
	Problem   string
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
	return w.render(c, "accounts", view{Title: "Accounts", Session: sess(c), Nav: "accounts", Error: d.Problem, Data: d})
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
	return w.accountsView(c, accountsData{InviteURL: url, InviteFor: id, Expires: expires.Format("2006-01-02 15:04 UTC")})
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
	return w.accountsView(c, accountsData{Token: tok, TokenFor: id})
}
