// Package rpcapi answers the stores and opt-outs requests ingress forwards
// (contract §13) for the account ingress authenticated. Another account's
// store is answered exactly like an unknown one. Bodies arrive as sent and
// are validated here, so the rules live in one place.
package rpcapi

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/keys"
	"github.com/apitosms/apitosms/libs/timestamp"
	"github.com/apitosms/apitosms/services/stores/internal/orders"
	"github.com/apitosms/apitosms/services/stores/internal/phone"
	"github.com/apitosms/apitosms/services/stores/internal/secret"
	"github.com/apitosms/apitosms/services/stores/internal/store"
	"github.com/apitosms/apitosms/services/stores/internal/templates"
)

// Limits of the API.
const (
	MaxNameRunes    = 100
	MaxAdminPhones  = 10
	MaxSecret       = 256
	MinSecret       = 8
	MaxPageSize     = 500
	DefaultPageSize = 50
	MaxOptOutsBatch = 10000
)

// ErrNotFound answers an unknown store.
var ErrNotFound = apperr.New(http.StatusNotFound, "store_not_found", "Store not found")

var (
	errInvalidCursor = apperr.New(http.StatusBadRequest, "invalid_cursor", "Invalid cursor")
	errInvalidLimit  = apperr.New(http.StatusBadRequest, "invalid_limit", "Invalid limit")
)

func invalidBody(sentence string) *apperr.Error {
	return apperr.New(http.StatusBadRequest, "invalid_body", sentence)
}

func invalidTemplate(sentence string) *apperr.Error {
	return apperr.New(http.StatusBadRequest, "invalid_template", sentence)
}

// Settings of the API.
type Settings struct {
	PublicURL string // base of webhookUrl
	MaxStores int    // per account
}

// API handles the requests.
type API struct {
	store   *store.Store
	sealer  *keys.Sealer
	set     Settings
	changed func(id string) // a store changed or was deleted
}

// New returns the API; changed is told of every store changed or deleted.
func New(st *store.Store, sealer *keys.Sealer, set Settings, changed func(id string)) *API {
	set.PublicURL = strings.TrimRight(set.PublicURL, "/")
	return &API{store: st, sealer: sealer, set: set, changed: changed}
}

// WellFormedID reports whether id can name a store at all.
func WellFormedID(id string) bool { return store.Stores.WellFormedID(id) }

// Settings of one store, decoded from its row.
type Conf struct {
	AdminPhones []string
	Templates   map[string]templates.Template // every key, defaults filled in
	PhoneFrom   []string
}

// Decode reads a store row's settings.
func Decode(c store.Conn) Conf {
	var cf Conf
	_ = json.Unmarshal([]byte(c.AdminPhones), &cf.AdminPhones)
	set := map[string]templates.Template{}
	_ = json.Unmarshal([]byte(c.Templates), &set)
	cf.Templates = make(map[string]templates.Template, len(templates.Keys))
	for _, k := range templates.Keys {
		t, ok := set[k]
		if !ok {
			t = templates.Defaults[k]
		}
		if t.Text == "" {
			t.Text = templates.Defaults[k].Text
		}
		cf.Templates[k] = t
	}
	if c.PhoneFrom != "" {
		cf.PhoneFrom = strings.Split(c.PhoneFrom, ",")
	}
	if cf.AdminPhones == nil {
		cf.AdminPhones = []string{}
	}
	return cf
}

func (a *API) view(c store.Conn) events.StoreView {
	cf := Decode(c)
	return events.StoreView{
		ID: c.ID, Platform: c.Platform, Name: c.Name,
		WebhookURL:     a.set.PublicURL + "/hooks/" + c.Platform + "/" + c.ID,
		DefaultCountry: c.DefaultCountry, AdminPhones: cf.AdminPhones, Templates: cf.Templates,
		PhoneFrom: cf.PhoneFrom,
		CreatedAt: timestamp.Format(time.UnixMilli(c.CreatedMs)), UpdatedAt: timestamp.Format(time.UnixMilli(c.UpdatedMs)),
	}
}

// fields is a create or PATCH body, every field optional here.
type fields struct {
	Platform       *string
	Name           *string
	Secret         *string
	DefaultCountry *string
	AdminPhones    *[]string
	Templates      map[string]json.RawMessage
	PhoneFrom      *[]string
}

func parseFields(raw []byte) (fields, error) {
	var f fields
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return f, apperr.ErrInvalidJSON
	}
	for name, v := range obj {
		if string(v) == "null" {
			continue
		}
		var err error
		switch name {
		case "platform":
			f.Platform = new(string)
			err = json.Unmarshal(v, f.Platform)
		case "name":
			f.Name = new(string)
			err = json.Unmarshal(v, f.Name)
		case "secret":
			f.Secret = new(string)
			err = json.Unmarshal(v, f.Secret)
		case "defaultCountry":
			f.DefaultCountry = new(string)
			err = json.Unmarshal(v, f.DefaultCountry)
		case "adminPhones":
			f.AdminPhones = new([]string)
			err = json.Unmarshal(v, f.AdminPhones)
		case "phoneFrom":
			f.PhoneFrom = new([]string)
			err = json.Unmarshal(v, f.PhoneFrom)
		case "templates":
			if json.Unmarshal(v, &f.Templates) != nil || f.Templates == nil {
				return f, invalidTemplate("templates must be an object of template keys")
			}
			continue
		default:
			continue // unknown fields are ignored, like the rest of the API
		}
		if err != nil {
			kind := "a string"
			if name == "adminPhones" || name == "phoneFrom" {
				kind = "an array of strings"
			}
			return f, invalidBody(name + " must be " + kind)
		}
	}
	return f, nil
}

// apply validates f and writes it into c (country first: admin phones are
// parsed with it).
func (a *API) apply(c *store.Conn, f fields) (string, error) {
	if f.Name != nil {
		n := strings.TrimSpace(*f.Name)
		if n == "" || utf8.RuneCountInString(n) > MaxNameRunes || !utf8.ValidString(n) {
			return "", invalidBody(fmt.Sprintf("name must be 1-%d characters", MaxNameRunes))
		}
		c.Name = n
	}
	if f.DefaultCountry != nil {
		cc := strings.ToUpper(strings.TrimSpace(*f.DefaultCountry))
		if !phone.KnownRegion(cc) {
			return "", invalidBody("defaultCountry must be an ISO 3166 alpha-2 country code, e.g. US")
		}
		c.DefaultCountry = cc
	}
	cf := Decode(*c)
	if f.AdminPhones != nil {
		if len(*f.AdminPhones) > MaxAdminPhones {
			return "", invalidBody(fmt.Sprintf("adminPhones: at most %d numbers", MaxAdminPhones))
		}
		list := []string{}
		for _, p := range *f.AdminPhones {
			e, ok := phone.E164(p, c.DefaultCountry)
			if !ok {
				return "", invalidBody(fmt.Sprintf("adminPhones: %q is not a valid phone number", clip(p)))
			}
			if !slices.Contains(list, e) {
				list = append(list, e)
			}
		}
		b, _ := json.Marshal(list)
		c.AdminPhones = string(b)
	}
	if f.PhoneFrom != nil {
		var list []string
		for _, p := range *f.PhoneFrom {
			if p != "billing" && p != "shipping" {
				return "", invalidBody(`phoneFrom must list "billing" and/or "shipping"`)
			}
			if !slices.Contains(list, p) {
				list = append(list, p)
			}
		}
		if len(list) == 0 {
			return "", invalidBody(`phoneFrom must list "billing" and/or "shipping"`)
		}
		c.PhoneFrom = strings.Join(list, ",")
	}
	if f.Templates != nil {
		set := map[string]templates.Template{}
		_ = json.Unmarshal([]byte(c.Templates), &set)
		for k, raw := range f.Templates {
			if !templates.IsKey(k) {
				return "", invalidTemplate(fmt.Sprintf("unknown template key %q", clip(k)))
			}
			var t struct {
				Enabled *bool   `json:"enabled"`
				Text    *string `json:"text"`
			}
			if json.Unmarshal(raw, &t) != nil {
				return "", invalidTemplate(fmt.Sprintf("template %s must be {\"enabled\":bool,\"text\":string}", k))
			}
			cur := cf.Templates[k]
			if t.Enabled != nil {
				cur.Enabled = *t.Enabled
			}
			if t.Text != nil {
				if err := templates.Validate(*t.Text); err != nil {
					return "", invalidTemplate(fmt.Sprintf("template %s: %v", k, err))
				}
				cur.Text = *t.Text
			}
			set[k] = cur
		}
		b, _ := json.Marshal(set)
		c.Templates = string(b)
	}
	if f.Secret != nil {
		s := *f.Secret
		if len(s) < MinSecret || len(s) > MaxSecret || !utf8.ValidString(s) {
			return "", invalidBody(fmt.Sprintf("secret must be %d-%d characters", MinSecret, MaxSecret))
		}
		c.Secret = a.sealer.Seal(s, nil)
		return s, nil
	}
	return "", nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40]
	}
	return s
}

// Create makes a store. The secret is the platform's (Shopify shows it;
// WooCommerce lets the merchant type one); without one a WooCommerce store
// gets a generated secret, shown only in this answer.
func (a *API) Create(ctx context.Context, req events.StoreRequest) (json.RawMessage, error) {
	f, err := parseFields(req.Body)
	if err != nil {
		return nil, err
	}
	if f.Platform == nil || (*f.Platform != orders.Shopify && *f.Platform != orders.WooCommerce) {
		return nil, invalidBody(`platform must be "shopify" or "woocommerce"`)
	}
	if f.Name == nil {
		return nil, invalidBody("name is required")
	}
	if f.DefaultCountry == nil {
		return nil, invalidBody("defaultCountry is required")
	}
	generated := ""
	if f.Secret == nil {
		if *f.Platform == orders.Shopify {
			return nil, invalidBody("secret is required: the key Shopify signs webhooks with")
		}
		generated = secret.Generate()
		f.Secret = &generated
	}
	now := store.Ms(time.Now())
	c := store.Conn{ID: store.Stores.NewID(), AccountID: req.AccountID, Platform: *f.Platform, AdminPhones: "[]",
		Templates: "{}", PhoneFrom: "billing,shipping", CreatedMs: now, UpdatedMs: now}
	sec, err := a.apply(&c, f)
	if err != nil {
		return nil, err
	}
	if err := a.store.Create(ctx, &c, a.set.MaxStores); err != nil {
		if errors.Is(err, store.ErrTooMany) {
			return nil, apperr.New(http.StatusConflict, "too_many_stores", fmt.Sprintf("Too many stores (max %d)", a.set.MaxStores))
		}
		return nil, err
	}
	v := a.view(c)
	v.Secret = sec
	return json.Marshal(v) //nolint:gosec // G117: the create answer is the one place the contract shows the secret (§13)
}

// List returns every store of the account.
func (a *API) List(ctx context.Context, req events.StoreRequest) (json.RawMessage, error) {
	rows, err := a.store.List(ctx, req.AccountID)
	if err != nil {
		return nil, err
	}
	out := events.StoreList{Stores: make([]events.StoreView, len(rows))}
	for i, c := range rows {
		out.Stores[i] = a.view(c)
	}
	return json.Marshal(out)
}

func (a *API) get(ctx context.Context, account int64, id string) (store.Conn, error) {
	c, err := a.store.Get(ctx, account, id)
	if errors.Is(err, store.ErrNotFound) {
		return c, ErrNotFound
	}
	return c, err
}

// Get returns one store.
func (a *API) Get(ctx context.Context, req events.StoreRequest) (json.RawMessage, error) {
	c, err := a.get(ctx, req.AccountID, req.ID)
	if err != nil {
		return nil, err
	}
	return json.Marshal(a.view(c)) //nolint:gosec // G117: view leaves Secret empty (omitempty): only the create answer carries it
}

// Update changes the fields given; the platform cannot change.
func (a *API) Update(ctx context.Context, req events.StoreRequest) (json.RawMessage, error) {
	c, err := a.get(ctx, req.AccountID, req.ID)
	if err != nil {
		return nil, err
	}
	f, err := parseFields(req.Body)
	if err != nil {
		return nil, err
	}
	if f.Platform != nil && *f.Platform != c.Platform {
		return nil, invalidBody("platform cannot be changed; create another store")
	}
	if _, err := a.apply(&c, f); err != nil {
		return nil, err
	}
	c.UpdatedMs = store.Ms(time.Now())
	defer a.changed(c.ID)
	if err := a.store.Update(ctx, &c); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return json.Marshal(a.view(c)) //nolint:gosec // G117: view leaves Secret empty (omitempty): only the create answer carries it
}

// Delete removes a store, its log and its records; deliveries in flight
// for it send nothing.
func (a *API) Delete(ctx context.Context, req events.StoreRequest) (json.RawMessage, error) {
	if !WellFormedID(req.ID) {
		return nil, ErrNotFound
	}
	defer a.changed(req.ID)
	if err := a.store.Delete(ctx, req.AccountID, req.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return json.RawMessage(`{}`), nil
}

// Preview renders a template: the store's saved one for event, or "text"
// when given (validated like a save), with "order" (an order as the
// store's platform sends it) or a sample order.
func (a *API) Preview(ctx context.Context, req events.StoreRequest) (json.RawMessage, error) {
	c, err := a.get(ctx, req.AccountID, req.ID)
	if err != nil {
		return nil, err
	}
	var body struct {
		Event string          `json:"event"`
		Text  *string         `json:"text"`
		Order json.RawMessage `json:"order"`
	}
	if json.Unmarshal(req.Body, &body) != nil {
		return nil, apperr.ErrInvalidJSON
	}
	if !templates.IsKey(body.Event) {
		return nil, invalidTemplate(fmt.Sprintf("event must be one of %s", strings.Join(templates.Keys, ", ")))
	}
	text := Decode(c).Templates[body.Event].Text
	if body.Text != nil {
		if err := templates.Validate(*body.Text); err != nil {
			return nil, invalidTemplate(err.Error())
		}
		text = *body.Text
	}
	o := orders.Sample
	if len(body.Order) > 0 && string(body.Order) != "null" {
		topic := "orders/create"
		if c.Platform == orders.WooCommerce {
			topic = "order.created"
		}
		ev, err := orders.Parse(c.Platform, topic, body.Order)
		if err != nil {
			return nil, invalidBody("order must be an order object as " + c.Platform + " sends it")
		}
		o = ev.Order
	}
	out := Render(text, o, c.Name)
	n, enc := templates.Segments(out)
	return json.Marshal(events.StorePreview{Text: out, Segments: n, Encoding: enc})
}

// Render renders a template for an order of the store named shop.
func Render(text string, o orders.Order, shop string) string {
	return templates.Render(text, o.Values(shop))
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Log pages through a store's decisions, newest first. The cursor is the
// last entry's id: ids only grow, so following it never repeats an entry.
func (a *API) Log(ctx context.Context, req events.StoreRequest) (json.RawMessage, error) {
	c, err := a.get(ctx, req.AccountID, req.ID)
	if err != nil {
		return nil, err
	}
	limit := req.Limit
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 1 || limit > MaxPageSize {
		return nil, errInvalidLimit
	}
	var before int64
	if req.Cursor != "" {
		before, err = strconv.ParseInt(strings.TrimPrefix(req.Cursor, "log_"), 10, 64)
		if err != nil || before <= 0 || !strings.HasPrefix(req.Cursor, "log_") {
			return nil, errInvalidCursor
		}
	}
	rows, err := a.store.Log(ctx, c.ID, before, limit+1)
	if err != nil {
		return nil, err
	}
	var next *string
	if len(rows) > limit {
		rows = rows[:limit]
		s := "log_" + strconv.FormatInt(rows[limit-1].ID, 10)
		next = &s
	}
	out := events.StoreLogPage{Entries: make([]events.StoreLogEntry, len(rows)), NextCursor: next}
	for i, r := range rows {
		out.Entries[i] = events.StoreLogEntry{
			ID: "log_" + strconv.FormatInt(r.ID, 10), At: timestamp.Format(time.UnixMilli(r.AtMs)),
			DeliveryID: r.DeliveryID, Topic: r.Topic, Event: nullable(r.Event), OrderNumber: nullable(r.OrderNumber),
			Recipient: nullable(r.Recipient), Decision: r.Decision, Reason: nullable(r.Reason), Hash: nullable(r.Hash),
		}
	}
	return json.Marshal(out)
}

// optOutPhones reads {"phones":[...]} or, with a text/csv body, the first
// column of every row (a header row whose first cell is not a number is
// skipped). Every phone must carry its country code (+ or 00): opt-outs
// are per token, not per store, so there is no default country.
func optOutPhones(req events.StoreRequest) ([]string, error) {
	var raw []string
	if strings.HasPrefix(strings.ToLower(req.ContentType), "text/csv") {
		r := csv.NewReader(bytes.NewReader(req.Body))
		r.FieldsPerRecord = -1
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, invalidBody("CSV body could not be read: " + err.Error())
			}
			if len(rec) > 0 && strings.TrimSpace(rec[0]) != "" {
				raw = append(raw, rec[0])
			}
		}
		if len(raw) > 0 {
			if _, ok := phone.E164(raw[0], ""); !ok {
				raw = raw[1:] // header
			}
		}
	} else {
		var body struct {
			Phones []string `json:"phones"`
		}
		if json.Unmarshal(req.Body, &body) != nil {
			return nil, invalidBody(`body must be {"phones":[...]} or a text/csv list`)
		}
		raw = body.Phones
	}
	if len(raw) > MaxOptOutsBatch {
		return nil, apperr.New(http.StatusRequestEntityTooLarge, "batch_too_large",
			fmt.Sprintf("Too many phones in one request (max %d)", MaxOptOutsBatch))
	}
	out := make([]string, 0, len(raw))
	for _, p := range raw {
		e, ok := phone.E164(p, "")
		if !ok {
			return nil, apperr.New(http.StatusBadRequest, "invalid_phone",
				fmt.Sprintf("%q is not a valid phone number with its country code (+...)", clip(p)))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// OptOutsList returns the account's opted-out phones.
func (a *API) OptOutsList(ctx context.Context, req events.StoreRequest) (json.RawMessage, error) {
	list, err := a.store.OptOuts(ctx, req.AccountID)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []string{}
	}
	return json.Marshal(map[string]any{"phones": list})
}

// OptOutsAdd records phones; it answers how many were new and the phones
// as stored.
func (a *API) OptOutsAdd(ctx context.Context, req events.StoreRequest) (json.RawMessage, error) {
	list, err := optOutPhones(req)
	if err != nil {
		return nil, err
	}
	n, err := a.store.AddOptOuts(ctx, req.AccountID, list)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"added": n, "phones": list})
}

// OptOutsRemove forgets phones.
func (a *API) OptOutsRemove(ctx context.Context, req events.StoreRequest) (json.RawMessage, error) {
	list, err := optOutPhones(req)
	if err != nil {
		return nil, err
	}
	n, err := a.store.RemoveOptOuts(ctx, req.AccountID, list)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"removed": n, "phones": list})
}
