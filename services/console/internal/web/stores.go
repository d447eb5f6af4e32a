package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
)

// Store connections (contract §13). The stores service answers the same
// rpc ingress forwards /api/{token}/stores… to; its replies are the
// contract's JSON bodies, declared once in libs/events (StoreView,
// StoreList, StoreLogPage, StorePreview).

type storesData struct {
	Stores    []events.StoreView
	Secret    string
	SecretFor string
	Platforms []string
}

type storeLogData struct {
	Store   events.StoreView
	Entries []events.StoreLogEntry
	Next    string
	Limit   int
}

// storeLogPage is the log page's size unless ?limit= says otherwise.
const storeLogPage = 50

var errStoreLogLimit = apperr.New(http.StatusBadRequest, "invalid_limit", "limit must be a whole number from 1")

// storesCall asks the stores service subject for req and decodes its
// contract body into out (nil: the body is ignored).
func (w *Web) storesCall(c *fiber.Ctx, subject string, req events.StoreRequest, out any, idempotent bool) error {
	ctx, cancel := rpcCtx(c)
	defer cancel()
	var opts []rpc.CallOption
	if idempotent {
		opts = append(opts, rpc.Idempotent())
	}
	raw, err := rpc.Call[events.StoreRequest, json.RawMessage](ctx, w.d.Conn, subject, req, opts...)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

func (w *Web) storesView(c *fiber.Ctx, flash, secret, secretFor string) error {
	s := sess(c)
	var l events.StoreList
	if err := w.storesCall(c, w.d.Names.StoresList(), events.StoreRequest{AccountID: s.AccountID}, &l, true); err != nil {
		return err
	}
	problem, _ := c.Locals("problem").(string)
	return w.render(c, "stores", view{Title: "Stores", Session: s, Nav: "stores", Flash: flash, Error: problem,
		Data: storesData{Stores: l.Stores, Secret: secret, SecretFor: secretFor, Platforms: []string{"shopify", "woocommerce"}}})
}

func (w *Web) storesPage(c *fiber.Ctx) error {
	return w.storesView(c, c.Query("flash"), "", "")
}

// storeLog shows one store and a page of its decisions, newest first;
// ?cursor= follows the service's nextCursor, ?limit= sets the page size.
func (w *Web) storeLog(c *fiber.Ctx) error {
	s := sess(c)
	id := c.Params("id")
	var st events.StoreView
	if err := w.storesCall(c, w.d.Names.StoresGet(), events.StoreRequest{AccountID: s.AccountID, ID: id}, &st, true); err != nil {
		return err
	}
	var l events.StoreLogPage
	limit := storeLogPage
	if q := c.Query("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 {
			return errStoreLogLimit
		}
		limit = n // the service refuses more than its maximum page
	}
	req := events.StoreRequest{AccountID: s.AccountID, ID: id, Limit: limit, Cursor: c.Query("cursor")}
	if err := w.storesCall(c, w.d.Names.StoresLog(), req, &l, true); err != nil {
		return err
	}
	d := storeLogData{Store: st, Entries: l.Entries, Limit: limit}
	if l.NextCursor != nil {
		d.Next = *l.NextCursor
	}
	return w.render(c, "storelog", view{Title: "Store " + st.Name, Session: s, Nav: "stores", Data: d})
}

// createStore adds a connection from the form (§13 POST). The secret is
// the shop's signing key (Shopify's app secret; WooCommerce's may be left
// empty, then the service draws one); the answer shows it once.
func (w *Web) createStore(c *fiber.Ctx) error {
	s := sess(c)
	body := map[string]any{
		"platform":       c.FormValue("platform"),
		"name":           strings.TrimSpace(c.FormValue("name")),
		"defaultCountry": strings.ToUpper(strings.TrimSpace(c.FormValue("defaultCountry"))),
	}
	if sec := c.FormValue("secret"); sec != "" {
		body["secret"] = sec
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var st events.StoreView
	err = w.storesCall(c, w.d.Names.StoresCreate(), events.StoreRequest{AccountID: s.AccountID, Body: raw,
		ContentType: fiber.MIMEApplicationJSON}, &st, false)
	if err != nil {
		return w.storeProblem(c, err)
	}
	return w.storesView(c, "Store added. Paste its webhook URL into the shop. Its signing secret is shown once, here.", st.Secret, st.Name)
}

// deleteStore removes a connection (§13 DELETE), confirmed.
func (w *Web) deleteStore(c *fiber.Ctx) error {
	s := sess(c)
	if c.FormValue("confirm") != "yes" {
		c.Status(http.StatusBadRequest)
		c.Locals("problem", "Tick the box to confirm the deletion: the shop's webhooks are refused from then on")
		return w.storesView(c, "", "", "")
	}
	err := w.storesCall(c, w.d.Names.StoresDelete(), events.StoreRequest{AccountID: s.AccountID, ID: c.Params("id")}, nil, false)
	if err != nil {
		return w.storeProblem(c, err)
	}
	return c.Redirect("/console/stores?flash=store+deleted", http.StatusSeeOther)
}

// storeProblem shows a refused change (4xx: bad platform, missing name,
// too many stores, not found) on the stores page; anything else is the
// error page.
func (w *Web) storeProblem(c *fiber.Ctx, err error) error {
	if e, ok := apperr.As(err); ok && e.Status < 500 {
		c.Status(e.Status)
		c.Locals("problem", e.Message)
		return w.storesView(c, "", "", "")
	}
	return err
}

// deref shows a nullable log field.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
