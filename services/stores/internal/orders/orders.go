// Package orders reads a shop's webhook body (Shopify or WooCommerce) into
// the few fields an SMS needs and decides which template keys the event
// calls for (contract §13).
package orders

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	gojson "github.com/goccy/go-json"

	"github.com/apitosms/apitosms/services/stores/internal/templates"
)

// Platforms.
const (
	Shopify     = "shopify"
	WooCommerce = "woocommerce"
)

// Order is what an SMS is made of. It is also what the service remembers
// of an order between events (JSON).
type Order struct {
	ID        string            `json:"id"`
	Number    string            `json:"number"`
	FirstName string            `json:"firstName"`
	LastName  string            `json:"lastName"`
	Total     string            `json:"total"`
	Currency  string            `json:"currency"`
	Status    string            `json:"status"`
	Phones    map[string]string `json:"phones"` // billing, shipping, order
	Tracking  Tracking          `json:"-"`
	// Partial is set when the body names the order but lacks its customer
	// (Shopify refunds and fulfillments): the rest comes from memory.
	Partial bool `json:"-"`
}

// Tracking is a shipment's tracking.
type Tracking struct {
	Number  string
	URL     string
	Carrier string
}

// Values returns the placeholder values of o for a store named shop.
func (o Order) Values(shop string) map[string]string {
	return map[string]string{
		"shop_name": shop, "order_number": o.Number, "customer_first_name": o.FirstName,
		"customer_last_name": o.LastName, "total": o.Total, "currency": o.Currency, "status": o.Status,
		"tracking_number": o.Tracking.Number, "tracking_url": o.Tracking.URL, "carrier": o.Tracking.Carrier,
	}
}

// Merge fills o's empty fields from an earlier view of the same order.
func (o *Order) Merge(prev Order) {
	for _, f := range []struct{ dst, src *string }{
		{&o.Number, &prev.Number}, {&o.FirstName, &prev.FirstName}, {&o.LastName, &prev.LastName},
		{&o.Total, &prev.Total}, {&o.Currency, &prev.Currency}, {&o.Status, &prev.Status},
	} {
		if *f.dst == "" {
			*f.dst = *f.src
		}
	}
	if o.Phones == nil {
		o.Phones = map[string]string{}
	}
	for k, v := range prev.Phones {
		if o.Phones[k] == "" {
			o.Phones[k] = v
		}
	}
}

// ErrMalformed: the body is not the JSON object the topic promises.
var ErrMalformed = errors.New("malformed order JSON")

// Event is a parsed delivery: the order and the customer template it
// calls for ("" when none, with Why saying so); Admin when the admin
// alert applies.
type Event struct {
	Order Order
	Key   string
	Admin bool
	Why   string
}

// str reads a JSON value that platforms write as a string or a number.
type str string

func (s *str) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = str(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*s = str(n.String())
	return nil
}

type address struct {
	FirstName str `json:"first_name"`
	LastName  str `json:"last_name"`
	Phone     str `json:"phone"`
}

// shopifyOrder is the part of Shopify's order resource read here.
type shopifyOrder struct {
	ID               str      `json:"id"`
	Name             str      `json:"name"`
	OrderNumber      str      `json:"order_number"`
	TotalPrice       str      `json:"total_price"`
	Currency         str      `json:"currency"`
	Phone            str      `json:"phone"`
	FinancialStatus  str      `json:"financial_status"`
	FulfillmentState str      `json:"fulfillment_status"`
	BillingAddress   *address `json:"billing_address"`
	ShippingAddress  *address `json:"shipping_address"`
	Customer         *struct {
		FirstName str `json:"first_name"`
		LastName  str `json:"last_name"`
		Phone     str `json:"phone"`
	} `json:"customer"`
	Fulfillments []shopifyFulfillment `json:"fulfillments"`
	// A fulfillment or refund body: the order it belongs to.
	OrderID str `json:"order_id"`
}

type shopifyFulfillment struct {
	OrderID         str      `json:"order_id"`
	Name            str      `json:"name"`
	Status          str      `json:"status"`
	TrackingCompany str      `json:"tracking_company"`
	TrackingNumber  str      `json:"tracking_number"`
	TrackingURL     str      `json:"tracking_url"`
	Destination     *address `json:"destination"`
}

func phones(billing, shipping *address, order str) map[string]string {
	p := map[string]string{"order": string(order)}
	if billing != nil {
		p["billing"] = string(billing.Phone)
	}
	if shipping != nil {
		p["shipping"] = string(shipping.Phone)
	}
	return p
}

// Shopify topics handled, and the template each calls for.
var shopifyTopics = map[string]string{
	"orders/create":       templates.OrderCreated,
	"orders/paid":         templates.OrderPaid,
	"orders/fulfilled":    templates.OrderShipped,
	"orders/cancelled":    templates.OrderCancelled,
	"fulfillments/create": templates.OrderShipped,
	"fulfillments/update": templates.OrderShipped,
	"refunds/create":      templates.OrderRefunded,
}

// ParseShopify reads a Shopify delivery of topic.
func ParseShopify(topic string, body []byte) (Event, error) {
	key, ok := shopifyTopics[topic]
	if !ok {
		return Event{Why: fmt.Sprintf("topic %q is not handled", trim(topic))}, nil
	}
	switch topic {
	case "fulfillments/create", "fulfillments/update":
		var f shopifyFulfillment
		if err := decode(body, &f); err != nil {
			return Event{}, err
		}
		if f.OrderID == "" {
			return Event{}, ErrMalformed
		}
		o := Order{ID: string(f.OrderID), Partial: true, Phones: map[string]string{},
			Tracking: Tracking{Number: string(f.TrackingNumber), URL: string(f.TrackingURL), Carrier: string(f.TrackingCompany)}}
		if f.Destination != nil {
			o.Phones["shipping"] = string(f.Destination.Phone)
			o.FirstName, o.LastName = string(f.Destination.FirstName), string(f.Destination.LastName)
		}
		// "#1042.1" is the first fulfillment of order #1042.
		if n := string(f.Name); n != "" {
			o.Number, _, _ = strings.Cut(n, ".")
		}
		if f.Status == "cancelled" || f.Status == "failure" || f.Status == "error" {
			return Event{Order: o, Why: "fulfillment status " + trim(string(f.Status))}, nil
		}
		return Event{Order: o, Key: key}, nil
	}
	var so shopifyOrder
	if err := decode(body, &so); err != nil {
		return Event{}, err
	}
	if topic == "refunds/create" {
		if so.OrderID == "" {
			return Event{}, ErrMalformed
		}
		return Event{Order: Order{ID: string(so.OrderID), Partial: true, Phones: map[string]string{}}, Key: key}, nil
	}
	if so.ID == "" {
		return Event{}, ErrMalformed
	}
	o := Order{ID: string(so.ID), Number: string(so.Name), Total: string(so.TotalPrice), Currency: string(so.Currency),
		Phones: phones(so.BillingAddress, so.ShippingAddress, so.Phone)}
	if o.Number == "" && so.OrderNumber != "" {
		o.Number = "#" + string(so.OrderNumber)
	}
	o.Status = string(so.FinancialStatus)
	if so.FulfillmentState != "" {
		o.Status = string(so.FulfillmentState)
	}
	if so.Customer != nil {
		o.FirstName, o.LastName = string(so.Customer.FirstName), string(so.Customer.LastName)
		if o.Phones["order"] == "" {
			o.Phones["order"] = string(so.Customer.Phone)
		}
	}
	if o.FirstName == "" && so.BillingAddress != nil {
		o.FirstName, o.LastName = string(so.BillingAddress.FirstName), string(so.BillingAddress.LastName)
	}
	if n := len(so.Fulfillments); n > 0 {
		f := so.Fulfillments[n-1]
		o.Tracking = Tracking{Number: string(f.TrackingNumber), URL: string(f.TrackingURL), Carrier: string(f.TrackingCompany)}
	}
	return Event{Order: o, Key: key, Admin: topic == "orders/create"}, nil
}

// wooOrder is the part of WooCommerce's order resource (REST API v3) read here.
type wooOrder struct {
	ID       str      `json:"id"`
	Number   str      `json:"number"`
	Status   str      `json:"status"`
	Currency str      `json:"currency"`
	Total    str      `json:"total"`
	Billing  *address `json:"billing"`
	Shipping *address `json:"shipping"`
	MetaData []struct {
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
	} `json:"meta_data"`
}

// wooStatus maps an order status to its template; statuses absent here
// (pending, failed, unknown custom ones) send nothing.
var wooStatus = map[string]string{
	"processing": templates.OrderPaid,
	"on-hold":    templates.OrderOnHold,
	"completed":  templates.OrderShipped,
	"shipped":    templates.OrderShipped,
	"wc-shipped": templates.OrderShipped,
	"cancelled":  templates.OrderCancelled,
	"refunded":   templates.OrderRefunded,
}

// ParseWoo reads a WooCommerce delivery of topic.
func ParseWoo(topic string, body []byte) (Event, error) {
	if topic != "order.created" && topic != "order.updated" {
		return Event{Why: fmt.Sprintf("topic %q is not handled", trim(topic))}, nil
	}
	var w wooOrder
	if err := decode(body, &w); err != nil {
		return Event{}, err
	}
	if w.ID == "" {
		return Event{}, ErrMalformed
	}
	o := Order{ID: string(w.ID), Number: string(w.Number), Total: string(w.Total), Currency: string(w.Currency),
		Status: string(w.Status), Phones: phones(w.Billing, w.Shipping, "")}
	if o.Number == "" {
		o.Number = o.ID
	}
	if w.Billing != nil {
		o.FirstName, o.LastName = string(w.Billing.FirstName), string(w.Billing.LastName)
	}
	for _, m := range w.MetaData {
		if m.Key == "_wc_shipment_tracking_items" {
			o.Tracking = wooTracking(m.Value)
		}
	}
	if topic == "order.created" {
		return Event{Order: o, Key: templates.OrderCreated, Admin: true}, nil
	}
	key, ok := wooStatus[o.Status]
	if !ok {
		return Event{Order: o, Why: fmt.Sprintf("status %q sends nothing", trim(o.Status))}, nil
	}
	return Event{Order: o, Key: key}, nil
}

// wooTracking reads the last item of the Shipment Tracking extension's meta.
func wooTracking(raw json.RawMessage) Tracking {
	var items []struct {
		Provider       str `json:"tracking_provider"`
		CustomProvider str `json:"custom_tracking_provider"`
		Number         str `json:"tracking_number"`
		Link           str `json:"custom_tracking_link"`
	}
	if json.Unmarshal(raw, &items) != nil || len(items) == 0 {
		return Tracking{}
	}
	it := items[len(items)-1]
	t := Tracking{Number: string(it.Number), URL: string(it.Link), Carrier: string(it.Provider)}
	if it.CustomProvider != "" {
		t.Carrier = string(it.CustomProvider)
	}
	return t
}

// Parse reads a delivery of platform.
func Parse(platform, topic string, body []byte) (Event, error) {
	if platform == WooCommerce {
		return ParseWoo(topic, body)
	}
	return ParseShopify(topic, body)
}

// decode reads a delivery's body with goccy/go-json (as libs/events does):
// parsing was a third of the consumer's CPU per order with encoding/json.
func decode(body []byte, v any) error {
	if err := gojson.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

func trim(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strconv.Quote(s)[1 : len(strconv.Quote(s))-1]
}

// Sample is the order a preview renders when none is given.
var Sample = Order{ID: "1042", Number: "#1042", FirstName: "Ana", LastName: "García", Total: "59.90",
	Currency: "EUR", Status: "paid", Tracking: Tracking{Number: "1Z999AA10123456784", URL: "https://track.example.com/1Z999AA10123456784", Carrier: "UPS"}}
