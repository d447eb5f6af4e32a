package web

import (
	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
)

// accountData is the operator's page of one account: billing's
// description with its subscription dates and the months' usage.
type accountData struct {
	Account events.AccountReply
	Max     int64 // the largest month, for the bars' widths
}

// accountPage shows one account to the operator: plan, limit, rate, the
// subscription's start, expiry or end, and the messages counted per month
// (billing keeps one counter a month; the newest events.UsageMonths).
func (w *Web) accountPage(c *fiber.Ctx) error {
	id, err := formAccount(c)
	if err != nil {
		return err
	}
	ctx, cancel := rpcCtx(c)
	defer cancel()
	acc, err := rpc.Call[events.AccountRequest, events.AccountReply](ctx, w.d.Conn, w.d.Names.BillingAccount(),
		events.AccountRequest{AccountID: id}, rpc.Idempotent())
	if err != nil {
		return err
	}
	d := accountData{Account: acc}
	for _, h := range acc.History {
		d.Max = max(d.Max, h.Used)
	}
	return w.render(c, "account", view{Title: "Account " + acc.Name, Session: sess(c), Nav: "accounts", Data: d})
}
