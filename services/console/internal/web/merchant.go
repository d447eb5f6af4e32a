package web

import (
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/skip2/go-qrcode"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/services/console/internal/auth"
)

// statusNames are the names of contract §9's statuses.
var statusNames = []string{"new", "initiated", "sent", "failed", "expired", "cancelled"}

func statusName(s int) string {
	if s >= 0 && s < len(statusNames) {
		return statusNames[s]
	}
	return strconv.Itoa(s)
}

// chartScan bounds how many of the latest messages the overview counts.
const chartScan = 5000

// day is one bar pair of the overview's chart.
type day struct {
	Date         string
	Sent, Failed int
}

type overviewData struct {
	Account  events.AccountReply
	Percent  int
	Counts   map[string]int
	Scanned  int
	Capped   bool
	Days     []day
	Chart    chart
	Phones   []events.Phone
	Messages []message
}

func (w *Web) overview(c *fiber.Ctx, s *auth.Session) error {
	ctx, cancel := rpcCtx(c)
	defer cancel()
	acc, err := rpc.Call[events.AccountRequest, events.AccountReply](ctx, w.d.Conn, w.d.Names.BillingAccount(),
		events.AccountRequest{AccountID: s.AccountID}, rpc.Idempotent())
	if err != nil {
		return err
	}
	d := overviewData{Account: acc, Counts: map[string]int{}}
	if acc.MonthlyLimit > 0 {
		d.Percent = int(min(100, acc.Used*100/acc.MonthlyLimit))
	}
	// Counts and the chart: the latest messages of the last 30 days.
	now := w.now().UTC()
	from := now.Truncate(24*time.Hour).AddDate(0, 0, -29)
	index := map[string]int{}
	for i := range 30 {
		date := from.AddDate(0, 0, i).Format("2006-01-02")
		index[date] = i
		d.Days = append(d.Days, day{Date: date})
	}
	var before int64
	for d.Scanned < chartScan {
		page, err := rpc.Call[events.HistoryRequest, events.HistoryReply](ctx, w.d.Conn, w.d.Names.QueueHistory(),
			events.HistoryRequest{AccountID: s.AccountID, Before: before, Limit: events.MaxHistory, From: &from}, rpc.Idempotent())
		if err != nil {
			return err
		}
		for _, m := range page.Messages {
			d.Scanned++
			d.Counts[statusName(m.Status)]++
			if len(d.Messages) < 5 {
				d.Messages = append(d.Messages, w.message(m))
			}
			if i, ok := index[m.QueuedAt.UTC().Format("2006-01-02")]; ok {
				switch m.Status {
				case 2:
					d.Days[i].Sent++
				case 3:
					d.Days[i].Failed++
				}
			}
		}
		if page.Next == 0 {
			break
		}
		before = page.Next
	}
	d.Capped = d.Scanned >= chartScan
	d.Chart = drawChart(d.Days)
	ph, err := rpc.Call[events.PhonesRequest, events.PhonesReply](ctx, w.d.Conn, w.d.Names.QueuePhones(),
		events.PhonesRequest{AccountID: s.AccountID}, rpc.Idempotent())
	if err != nil {
		return err
	}
	d.Phones = ph.Phones
	return w.render(c, "overview", view{Title: "Overview", Session: s, Nav: "overview", Data: d})
}

// token page -----------------------------------------------------------

type tokenData struct {
	Known    bool
	Masked   string
	Revealed string
	Fresh    bool
}

func mask(tok string) string {
	if len(tok) < 8 {
		return strings.Repeat("•", 12)
	}
	return tok[:4] + strings.Repeat("•", 12) + tok[len(tok)-4:]
}

// storedToken opens the account's sealed token ("" when the console never
// issued one).
func (w *Web) storedToken(c *fiber.Ctx, account int64) (string, error) {
	sealed, err := w.d.Store.Token(c.UserContext(), account)
	if err != nil || sealed == "" {
		return "", err
	}
	return w.d.Sealer.Open(account, sealed)
}

func (w *Web) tokenPage(c *fiber.Ctx) error {
	s := sess(c)
	tok, err := w.storedToken(c, s.AccountID)
	if err != nil {
		return err
	}
	return w.render(c, "token", view{Title: "API token", Session: s, Nav: "token",
		Data: tokenData{Known: tok != "", Masked: mask(tok)}})
}

// revealToken answers the token in the page body of a POST: it never
// appears in a URL the browser requests.
func (w *Web) revealToken(c *fiber.Ctx) error {
	s := sess(c)
	tok, err := w.storedToken(c, s.AccountID)
	if err != nil {
		return err
	}
	return w.render(c, "token", view{Title: "API token", Session: s, Nav: "token",
		Data: tokenData{Known: tok != "", Masked: mask(tok), Revealed: tok}})
}

// rotateToken issues a new token (the old one fails at once), keeps it
// sealed and shows it.
func (w *Web) rotateToken(c *fiber.Ctx) error {
	s := sess(c)
	if c.FormValue("confirm") != "yes" {
		c.Status(http.StatusBadRequest)
		tok, _ := w.storedToken(c, s.AccountID)
		return w.render(c, "token", view{Title: "API token", Session: s, Nav: "token",
			Error: "Tick the box to confirm: the current token stops working at once", Data: tokenData{Known: tok != "", Masked: mask(tok)}})
	}
	tok, err := w.rotate(c, s.AccountID)
	if err != nil {
		return err
	}
	return w.render(c, "token", view{Title: "API token", Session: s, Nav: "token", Flash: "New token issued; the old one no longer works",
		Data: tokenData{Known: true, Masked: mask(tok), Revealed: tok, Fresh: true}})
}

// rotate asks billing for a new token of account and keeps it sealed.
func (w *Web) rotate(c *fiber.Ctx, account int64) (string, error) {
	ctx, cancel := rpcCtx(c)
	defer cancel()
	r, err := rpc.Call[events.AccountRequest, events.TokenReply](ctx, w.d.Conn, w.d.Names.BillingRotateToken(),
		events.AccountRequest{AccountID: account})
	if err != nil {
		return "", err
	}
	if err := w.d.Store.PutToken(ctx, account, w.d.Sealer.Seal(account, r.APIToken), w.now().UnixMilli()); err != nil {
		return "", err
	}
	return r.APIToken, nil
}

// messages --------------------------------------------------------------

type message struct {
	Hash, Phone, Text, Status string
	QueuedAt, InitiatedAt     string
	FinishedAt, Device        string
	Attempts                  int
	Cancellable               bool
}

func fmtTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func (w *Web) message(m events.TrackedSMS) message {
	return message{
		Hash: w.d.Hashes.Hash(m.Pos), Phone: m.Phone, Text: m.Text, Status: statusName(m.Status),
		QueuedAt: fmtTime(&m.QueuedAt), InitiatedAt: fmtTime(m.ClaimedAt), FinishedAt: fmtTime(m.FinishedAt),
		Device: m.Device, Attempts: m.Attempts, Cancellable: m.Status == 0,
	}
}

type messagesData struct {
	Messages []message
	Status   string
	Phone    string
	Next     string
	Statuses []string
}

var errFilter = apperr.New(http.StatusBadRequest, "invalid_filter", "Unknown status or malformed phone number")

// historyRequest reads the page's filters.
func historyRequest(c *fiber.Ctx, account int64) (events.HistoryRequest, error) {
	req := events.HistoryRequest{AccountID: account, Limit: 50}
	if st := c.Query("status"); st != "" {
		found := false
		for i, n := range statusNames {
			if n == st {
				req.Statuses, found = []int{i}, true
			}
		}
		if !found {
			return req, errFilter
		}
	}
	if p := c.Query("phone"); p != "" {
		p = strings.NewReplacer(" ", "", "-", "", ".", "", "(", "", ")", "").Replace(p)
		digits := strings.TrimPrefix(p, "+")
		if len(digits) < 6 || len(digits) > 20 || strings.Trim(digits, "0123456789") != "" {
			return req, errFilter
		}
		req.Phone = p
	}
	if b := c.Query("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 1 {
			return req, errFilter
		}
		req.Before = n
	}
	return req, nil
}

func (w *Web) messagesPage(c *fiber.Ctx) error {
	s := sess(c)
	req, err := historyRequest(c, s.AccountID)
	if err != nil {
		return err
	}
	ctx, cancel := rpcCtx(c)
	defer cancel()
	page, err := rpc.Call[events.HistoryRequest, events.HistoryReply](ctx, w.d.Conn, w.d.Names.QueueHistory(), req, rpc.Idempotent())
	if err != nil {
		return err
	}
	d := messagesData{Status: c.Query("status"), Phone: req.Phone, Statuses: statusNames}
	for _, m := range page.Messages {
		d.Messages = append(d.Messages, w.message(m))
	}
	if page.Next != 0 {
		d.Next = strconv.FormatInt(page.Next, 10)
	}
	return w.render(c, "messages", view{Title: "Messages", Session: s, Nav: "messages", Flash: c.Query("flash"), Data: d})
}

// messagesCSV streams the filtered history as CSV (every page).
func (w *Web) messagesCSV(c *fiber.Ctx) error {
	s := sess(c)
	req, err := historyRequest(c, s.AccountID)
	if err != nil {
		return err
	}
	req.Limit = events.MaxHistory
	ctx, cancel := rpcCtx(c)
	defer cancel()
	c.Type("csv", "utf-8")
	c.Set("Content-Disposition", `attachment; filename="messages.csv"`)
	out := csv.NewWriter(c.Response().BodyWriter())
	_ = out.Write([]string{"hash", "phone", "text", "status", "queuedAt", "initiatedAt", "finishedAt", "device", "attempts"})
	for {
		page, err := rpc.Call[events.HistoryRequest, events.HistoryReply](ctx, w.d.Conn, w.d.Names.QueueHistory(), req, rpc.Idempotent())
		if err != nil {
			return err
		}
		for _, m := range page.Messages {
			v := w.message(m)
			_ = out.Write([]string{v.Hash, v.Phone, csvSafe(v.Text), v.Status, v.QueuedAt, v.InitiatedAt, v.FinishedAt,
				csvSafe(v.Device), strconv.Itoa(v.Attempts)})
		}
		if page.Next == 0 {
			break
		}
		req.Before = page.Next
	}
	out.Flush()
	return out.Error()
}

// csvSafe keeps a spreadsheet from reading a cell as a formula (CSV
// injection): a leading = + - @ gets a quote mark in front.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (w *Web) cancelMessage(c *fiber.Ctx) error {
	s := sess(c)
	pos, ok := w.d.Hashes.Pos(c.Params("hash"))
	if !ok {
		return apperr.New(http.StatusNotFound, "message_not_found", "Message not found")
	}
	ctx, cancel := rpcCtx(c)
	defer cancel()
	_, err := rpc.Call[events.CancelRequest, events.CancelReply](ctx, w.d.Conn, w.d.Names.QueueCancel(),
		events.CancelRequest{AccountID: s.AccountID, Pos: pos})
	if err != nil {
		return err
	}
	return c.Redirect("/console/messages?flash=cancelled", http.StatusSeeOther)
}

// phones, webhooks, settings -------------------------------------------

func (w *Web) phonesPage(c *fiber.Ctx) error {
	s := sess(c)
	ctx, cancel := rpcCtx(c)
	defer cancel()
	ph, err := rpc.Call[events.PhonesRequest, events.PhonesReply](ctx, w.d.Conn, w.d.Names.QueuePhones(),
		events.PhonesRequest{AccountID: s.AccountID}, rpc.Idempotent())
	if err != nil {
		return err
	}
	app := strings.TrimSuffix(w.cfg.PublicURL, "/") + "/download/app.apk"
	qr, err := qrDataURI(app)
	if err != nil {
		return err
	}
	return w.render(c, "phones", view{Title: "Phones", Session: s, Nav: "phones",
		Data: phonesData{Phones: ph.Phones, AppURL: app, QR: qr}})
}

type phonesData struct {
	Phones []events.Phone
	AppURL string
	QR     template.URL
}

// qrDataURI draws a QR code of s server-side (skip2/go-qrcode) as a PNG
// data: URI (the CSP allows data: images only).
func qrDataURI(s string) (template.URL, error) {
	png, err := qrcode.Encode(s, qrcode.Medium, 240)
	if err != nil {
		return "", err
	}
	uri := "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
	return template.URL(uri), nil //nolint:gosec // G203: a PNG this function drew, base64-encoded: no input reaches the URL unescaped
}

type webhooksData struct {
	Webhooks   []events.Webhook
	Types      []string
	Secret     string
	SecretFor  string
	Deliveries map[string][]events.WebhookAttempt
}

func (w *Web) webhooksView(c *fiber.Ctx, flash, secret, secretFor string) error {
	s := sess(c)
	ctx, cancel := rpcCtx(c)
	defer cancel()
	l, err := rpc.Call[events.WebhookListRequest, events.WebhookList](ctx, w.d.Conn, w.d.Names.WebhooksList(),
		events.WebhookListRequest{AccountID: s.AccountID}, rpc.Idempotent())
	if err != nil {
		return err
	}
	d := webhooksData{Webhooks: l.Webhooks, Types: events.NotificationTypes, Secret: secret, SecretFor: secretFor,
		Deliveries: map[string][]events.WebhookAttempt{}}
	for _, h := range l.Webhooks {
		dl, err := rpc.Call[events.WebhookDeliveriesRequest, events.WebhookDeliveries](ctx, w.d.Conn, w.d.Names.WebhooksDeliveries(),
			events.WebhookDeliveriesRequest{AccountID: s.AccountID, ID: h.ID, Limit: 10}, rpc.Idempotent())
		if err != nil {
			return err
		}
		d.Deliveries[h.ID] = dl.Deliveries
	}
	problem, _ := c.Locals("problem").(string)
	return w.render(c, "webhooks", view{Title: "Webhooks", Session: s, Nav: "webhooks", Flash: flash, Error: problem, Data: d})
}

func (w *Web) webhooksPage(c *fiber.Ctx) error {
	return w.webhooksView(c, c.Query("flash"), "", "")
}

func (w *Web) createWebhook(c *fiber.Ctx) error {
	s := sess(c)
	var types []string
	for _, t := range events.NotificationTypes {
		if c.FormValue("event_"+t) == "on" {
			types = append(types, t)
		}
	}
	ctx, cancel := rpcCtx(c)
	defer cancel()
	h, err := rpc.Call[events.WebhookCreateRequest, events.Webhook](ctx, w.d.Conn, w.d.Names.WebhooksCreate(),
		events.WebhookCreateRequest{AccountID: s.AccountID, URL: strings.TrimSpace(c.FormValue("url")), Events: types,
			Batch: c.FormValue("batch") == "on", Description: c.FormValue("description")})
	if err != nil {
		if e, ok := apperr.As(err); ok && e.Status < 500 {
			c.Status(e.Status)
			c.Locals("problem", e.Message)
			return w.webhooksView(c, "", "", "")
		}
		return err
	}
	return w.webhooksView(c, "Webhook added. Copy its signing secret now: it is not shown again.", h.Secret, h.ID)
}

func (w *Web) testWebhook(c *fiber.Ctx) error {
	s := sess(c)
	ctx, cancel := rpcCtx(c)
	defer cancel()
	_, err := rpc.Call[events.WebhookRef, events.WebhookTestReply](ctx, w.d.Conn, w.d.Names.WebhooksTest(),
		events.WebhookRef{AccountID: s.AccountID, ID: c.Params("id")})
	if err != nil {
		return err
	}
	return c.Redirect("/console/webhooks?flash=test+event+sent", http.StatusSeeOther)
}

func (w *Web) rotateWebhook(c *fiber.Ctx) error {
	s := sess(c)
	ctx, cancel := rpcCtx(c)
	defer cancel()
	r, err := rpc.Call[events.WebhookRef, events.WebhookSecret](ctx, w.d.Conn, w.d.Names.WebhooksRotate(),
		events.WebhookRef{AccountID: s.AccountID, ID: c.Params("id")})
	if err != nil {
		return err
	}
	return w.webhooksView(c, "New signing secret (the old one keeps signing for 24 hours). Copy it now: it is not shown again.", r.Secret, c.Params("id"))
}

// editWebhook saves the edit form of one endpoint: every field is sent
// (§10 PATCH with url, events, batch, enabled, description), so the
// endpoint ends up exactly as the form showed it. No event ticked: all but
// message.initiated, as at creation.
func (w *Web) editWebhook(c *fiber.Ctx) error {
	s := sess(c)
	types := []string{}
	for _, t := range events.NotificationTypes {
		if c.FormValue("event_"+t) == "on" {
			types = append(types, t)
		}
	}
	url := strings.TrimSpace(c.FormValue("url"))
	desc := c.FormValue("description")
	batch := c.FormValue("batch") == "on"
	enabled := c.FormValue("enabled") == "on"
	ctx, cancel := rpcCtx(c)
	defer cancel()
	_, err := rpc.Call[events.WebhookUpdateRequest, events.Webhook](ctx, w.d.Conn, w.d.Names.WebhooksUpdate(),
		events.WebhookUpdateRequest{AccountID: s.AccountID, ID: c.Params("id"), URL: &url, Events: &types,
			Batch: &batch, Enabled: &enabled, Description: &desc})
	if err != nil {
		return w.webhookProblem(c, err)
	}
	return c.Redirect("/console/webhooks?flash=webhook+saved", http.StatusSeeOther)
}

// deleteWebhook removes an endpoint (§10 DELETE), confirmed.
func (w *Web) deleteWebhook(c *fiber.Ctx) error {
	s := sess(c)
	if c.FormValue("confirm") != "yes" {
		c.Status(http.StatusBadRequest)
		c.Locals("problem", "Tick the box to confirm the deletion: its undelivered events are dropped")
		return w.webhooksView(c, "", "", "")
	}
	ctx, cancel := rpcCtx(c)
	defer cancel()
	_, err := rpc.Call[events.WebhookRef, events.WebhookDeleted](ctx, w.d.Conn, w.d.Names.WebhooksDelete(),
		events.WebhookRef{AccountID: s.AccountID, ID: c.Params("id")})
	if err != nil {
		return w.webhookProblem(c, err)
	}
	return c.Redirect("/console/webhooks?flash=webhook+deleted", http.StatusSeeOther)
}

// webhookProblem shows a refused webhook change (4xx: bad URL, unknown
// event, not found) on the webhooks page; anything else is the error page.
func (w *Web) webhookProblem(c *fiber.Ctx, err error) error {
	if e, ok := apperr.As(err); ok && e.Status < 500 {
		c.Status(e.Status)
		c.Locals("problem", e.Message)
		return w.webhooksView(c, "", "", "")
	}
	return err
}

func (w *Web) settingsPage(c *fiber.Ctx) error {
	s := sess(c)
	ctx, cancel := rpcCtx(c)
	defer cancel()
	st, err := rpc.Call[events.SettingsGetRequest, events.Settings](ctx, w.d.Conn, w.d.Names.QueueSettingsGet(),
		events.SettingsGetRequest{AccountID: s.AccountID}, rpc.Idempotent())
	if err != nil {
		return err
	}
	return w.render(c, "settings", view{Title: "Settings", Session: s, Nav: "settings", Flash: c.Query("flash"), Data: st})
}

func (w *Web) saveSettings(c *fiber.Ctx) error {
	s := sess(c)
	lease, err1 := strconv.Atoi(c.FormValue("leaseSeconds"))
	attempts, err2 := strconv.Atoi(c.FormValue("maxAttempts"))
	expiry := c.FormValue("onLeaseExpiry")
	if err1 != nil || err2 != nil {
		return apperr.New(http.StatusBadRequest, "invalid_settings", "leaseSeconds and maxAttempts must be whole numbers")
	}
	ctx, cancel := rpcCtx(c)
	defer cancel()
	_, err := rpc.Call[events.SettingsSetRequest, events.Settings](ctx, w.d.Conn, w.d.Names.QueueSettingsSet(),
		events.SettingsSetRequest{AccountID: s.AccountID, LeaseSeconds: &lease, OnLeaseExpiry: &expiry, MaxAttempts: &attempts})
	if err != nil {
		return err
	}
	return c.Redirect("/console/settings?flash=saved", http.StatusSeeOther)
}

// chart -----------------------------------------------------------------

// chart is the overview's 30-day sent-vs-failed bar chart, computed here and
// drawn by the template as SVG (no script).
type chart struct {
	Width, Height int
	Bars          []bar
	Max           int
	Label         string
}

type bar struct {
	X, W, SentY, SentH, FailY, FailH int
	Title                            string
}

func drawChart(days []day) chart {
	const h, barW, gap = 120, 8, 2
	ch := chart{Width: len(days) * (barW*2 + gap*2), Height: h}
	for _, d := range days {
		ch.Max = max(ch.Max, d.Sent, d.Failed)
	}
	scale := func(n int) int {
		if ch.Max == 0 {
			return 0
		}
		return n * (h - 10) / ch.Max
	}
	sent, failed := 0, 0
	for i, d := range days {
		x := i * (barW*2 + gap*2)
		sh, fh := scale(d.Sent), scale(d.Failed)
		ch.Bars = append(ch.Bars, bar{X: x, W: barW, SentY: h - sh, SentH: sh, FailY: h - fh, FailH: fh,
			Title: fmt.Sprintf("%s: %d sent, %d failed", d.Date, d.Sent, d.Failed)})
		sent += d.Sent
		failed += d.Failed
	}
	ch.Label = fmt.Sprintf("Last 30 days: %d sent, %d failed", sent, failed)
	return ch
}
