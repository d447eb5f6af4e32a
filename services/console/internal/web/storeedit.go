package web

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
)

// A store's settings page (§13 GET and PATCH, preview) and the account's
// opt-out list (§13 opt-outs), all over the stores service's rpc. The
// service validates everything (placeholders, phones, countries); a
// refusal is shown in the form that caused it, with what was typed kept.

// templateRow is one event's form on the page.
type templateRow struct {
	Key     string
	Enabled bool
	Text    string
	Preview *events.StorePreview
	Problem string
	Open    bool
}

type storeEditData struct {
	Store       events.StoreView
	AdminPhones string // one a line, as typed or as stored
	Templates   []templateRow
	Problem     string // the settings form's refusal
}

// storeEdit shows a store's settings and templates.
func (w *Web) storeEdit(c *fiber.Ctx) error {
	st, err := w.storeDetail(c)
	if err != nil {
		return err
	}
	return w.renderStoreEdit(c, st, c.Query("flash"), "", "", nil)
}

func (w *Web) storeDetail(c *fiber.Ctx) (events.StoreView, error) {
	var st events.StoreView
	err := w.storesCall(c, w.d.Names.StoresGet(), events.StoreRequest{AccountID: sess(c).AccountID, ID: c.Params("id")}, &st, true)
	return st, err
}

// renderStoreEdit shows the page; row, when not nil, replaces the stored
// template of its key (what was typed, its preview or its refusal).
func (w *Web) renderStoreEdit(c *fiber.Ctx, st events.StoreView, flash, problem, adminPhones string, row *templateRow) error {
	d := storeEditData{Store: st, Problem: problem, AdminPhones: adminPhones}
	if problem == "" {
		d.AdminPhones = strings.Join(st.AdminPhones, "\n")
	}
	for _, k := range events.StoreTemplateKeys {
		if row != nil && row.Key == k {
			d.Templates = append(d.Templates, *row)
			continue
		}
		t := st.Templates[k]
		d.Templates = append(d.Templates, templateRow{Key: k, Enabled: t.Enabled, Text: t.Text})
	}
	return w.render(c, "storeedit", view{Title: "Store " + st.Name, Session: sess(c), Nav: "stores", Flash: flash, Data: d})
}

// refused reports whether err is a refusal to show in a form (a 4xx), and
// sets the answer's status to it.
func refused(c *fiber.Ctx, err error) (string, bool) {
	if e, ok := apperr.As(err); ok && e.Status < 500 && e.Status != http.StatusNotFound {
		c.Status(e.Status)
		return e.Message, true
	}
	return "", false
}

// saveStoreSettings PATCHes name, default country, admin phones (one a
// line or comma-separated), where the customer's phone is read from, and
// optionally a new signing secret.
func (w *Web) saveStoreSettings(c *fiber.Ctx) error {
	st, err := w.storeDetail(c)
	if err != nil {
		return err
	}
	admins := c.FormValue("adminPhones")
	phones := []string{}
	for _, p := range strings.FieldsFunc(admins, func(r rune) bool { return r == '\n' || r == ',' || r == '\r' }) {
		if p = strings.TrimSpace(p); p != "" {
			phones = append(phones, p)
		}
	}
	from := []string{}
	for _, f := range []string{"billing", "shipping"} {
		if c.FormValue("phoneFrom_"+f) == "yes" {
			from = append(from, f)
		}
	}
	body := map[string]any{"name": c.FormValue("name"), "defaultCountry": strings.TrimSpace(c.FormValue("defaultCountry")),
		"adminPhones": phones, "phoneFrom": from}
	if s := c.FormValue("secret"); s != "" {
		body["secret"] = s
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var out events.StoreView
	err = w.storesCall(c, w.d.Names.StoresUpdate(), events.StoreRequest{AccountID: sess(c).AccountID, ID: st.ID, Body: raw,
		ContentType: fiber.MIMEApplicationJSON}, &out, false)
	if err != nil {
		msg, ok := refused(c, err)
		if !ok {
			return err
		}
		// Show what was typed, refused.
		st.Name, st.DefaultCountry, st.PhoneFrom = c.FormValue("name"), c.FormValue("defaultCountry"), from
		return w.renderStoreEdit(c, st, "", msg, admins, nil)
	}
	return c.Redirect("/console/stores/"+st.ID+"?flash=settings+saved", http.StatusSeeOther)
}

// storeTemplateForm previews (action=preview) or saves (action=save) one
// event's template: the preview renders the typed text on the service's
// sample order (text, encoding, segments); saving PATCHes it, and an
// unknown placeholder comes back as the service's 400, shown in the form.
func (w *Web) storeTemplateForm(c *fiber.Ctx) error {
	st, err := w.storeDetail(c)
	if err != nil {
		return err
	}
	key := c.Params("event")
	known := false
	for _, k := range events.StoreTemplateKeys {
		known = known || k == key
	}
	if !known {
		return apperr.ErrNotFound
	}
	row := templateRow{Key: key, Enabled: c.FormValue("enabled") == "yes", Text: c.FormValue("text"), Open: true}
	req := events.StoreRequest{AccountID: sess(c).AccountID, ID: st.ID, ContentType: fiber.MIMEApplicationJSON}
	if c.FormValue("action") == "preview" {
		req.Body, err = json.Marshal(map[string]any{"event": key, "text": row.Text})
		if err != nil {
			return err
		}
		var p events.StorePreview
		if err := w.storesCall(c, w.d.Names.StoresPreview(), req, &p, true); err != nil {
			msg, ok := refused(c, err)
			if !ok {
				return err
			}
			row.Problem = msg
		} else {
			row.Preview = &p
		}
		return w.renderStoreEdit(c, st, "", "", "", &row)
	}
	req.Body, err = json.Marshal(map[string]any{"templates": map[string]events.StoreTemplate{key: {Enabled: row.Enabled, Text: row.Text}}})
	if err != nil {
		return err
	}
	if err := w.storesCall(c, w.d.Names.StoresUpdate(), req, nil, false); err != nil {
		msg, ok := refused(c, err)
		if !ok {
			return err
		}
		row.Problem = msg
		return w.renderStoreEdit(c, st, "", "", "", &row)
	}
	return c.Redirect("/console/stores/"+st.ID+"?flash=template+"+key+"+saved#tpl-"+key, http.StatusSeeOther)
}

// optOutsPage is how many opted-out phones one page lists.
const optOutsPage = 100

type optOutsData struct {
	Phones      []string
	Total       int
	Page, Pages int
	Typed       string
}

// optOuts lists the account's opted-out phones, a page at a time
// (?page=, from 1); the service answers the whole list, the page slices it.
func (w *Web) optOuts(c *fiber.Ctx) error {
	page := 1
	if q := c.Query("page"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 {
			return apperr.New(http.StatusBadRequest, "invalid_page", "page must be a whole number from 1")
		}
		page = n
	}
	return w.optOutsView(c, page, c.Query("flash"), "", "")
}

func (w *Web) optOutsView(c *fiber.Ctx, page int, flash, problem, typed string) error {
	var l struct {
		Phones []string `json:"phones"`
	}
	if err := w.storesCall(c, w.d.Names.OptOutsList(), events.StoreRequest{AccountID: sess(c).AccountID}, &l, true); err != nil {
		return err
	}
	d := optOutsData{Total: len(l.Phones), Page: page, Pages: (len(l.Phones) + optOutsPage - 1) / optOutsPage, Typed: typed}
	if from := (page - 1) * optOutsPage; from < len(l.Phones) {
		d.Phones = l.Phones[from:min(from+optOutsPage, len(l.Phones))]
	}
	return w.render(c, "optouts", view{Title: "Opt-outs", Session: sess(c), Nav: "optouts", Flash: flash, Error: problem, Data: d})
}

// optOutsChange sends body to subject (add or remove) and shows the
// answer's count, or the refusal with what was typed kept.
func (w *Web) optOutsChange(c *fiber.Ctx, subject string, req events.StoreRequest, typed string) error {
	req.AccountID = sess(c).AccountID
	var out struct {
		Added   *int `json:"added"`
		Removed *int `json:"removed"`
	}
	if err := w.storesCall(c, subject, req, &out, false); err != nil {
		msg, ok := refused(c, err)
		if !ok {
			return err
		}
		return w.optOutsView(c, 1, "", msg, typed)
	}
	flash := ""
	switch {
	case out.Added != nil:
		flash = strconv.Itoa(*out.Added) + "+phone(s)+added"
	case out.Removed != nil:
		flash = strconv.Itoa(*out.Removed) + "+phone(s)+removed"
	}
	return c.Redirect("/console/optouts?flash="+flash, http.StatusSeeOther)
}

// addOptOuts records the phones typed, one a line or comma-separated.
func (w *Web) addOptOuts(c *fiber.Ctx) error {
	typed := c.FormValue("phones")
	phones := []string{}
	for _, p := range strings.FieldsFunc(typed, func(r rune) bool { return r == '\n' || r == ',' || r == '\r' }) {
		if p = strings.TrimSpace(p); p != "" {
			phones = append(phones, p)
		}
	}
	body, err := json.Marshal(map[string]any{"phones": phones})
	if err != nil {
		return err
	}
	return w.optOutsChange(c, w.d.Names.OptOutsAdd(), events.StoreRequest{Body: body, ContentType: fiber.MIMEApplicationJSON}, typed)
}

// removeOptOut forgets one phone.
func (w *Web) removeOptOut(c *fiber.Ctx) error {
	body, err := json.Marshal(map[string]any{"phones": []string{c.FormValue("phone")}})
	if err != nil {
		return err
	}
	return w.optOutsChange(c, w.d.Names.OptOutsRemove(), events.StoreRequest{Body: body, ContentType: fiber.MIMEApplicationJSON}, "")
}

// maxOptOutsCSV bounds an imported file (the service takes 10,000 phones a
// request; 1 MiB holds them with room).
const maxOptOutsCSV = 1 << 20

// importOptOuts sends an uploaded CSV file (first column: phones; a
// header row is skipped by the service) as a text/csv body.
func (w *Web) importOptOuts(c *fiber.Ctx) error {
	fh, err := c.FormFile("file")
	if err != nil {
		c.Status(http.StatusBadRequest)
		return w.optOutsView(c, 1, "", "Choose a CSV file to import", "")
	}
	if fh.Size > maxOptOutsCSV {
		c.Status(http.StatusRequestEntityTooLarge)
		return w.optOutsView(c, 1, "", "The file is too large (at most 1 MiB)", "")
	}
	f, err := fh.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, maxOptOutsCSV))
	if err != nil {
		return err
	}
	return w.optOutsChange(c, w.d.Names.OptOutsAdd(), events.StoreRequest{Body: body, ContentType: "text/csv"}, "")
}
