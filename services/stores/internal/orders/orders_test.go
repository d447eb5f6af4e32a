package orders

import (
	"os"
	"strings"
	"testing"

	"github.com/apitosms/apitosms/services/stores/internal/templates"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestShopifyOrder(t *testing.T) {
	t.Parallel()
	ev, err := ParseShopify("orders/create", read(t, "shopify_orders_create.json"))
	if err != nil {
		t.Fatal(err)
	}
	o := ev.Order
	if ev.Key != templates.OrderCreated || !ev.Admin || o.ID != "5832907456789" || o.Number != "#1042" ||
		o.FirstName != "Łukasz" || o.LastName != "Wiśniewski" || o.Total != "59.90" || o.Currency != "EUR" {
		t.Fatalf("%+v", ev)
	}
	if o.Phones["billing"] != "+48 512 345 678" || o.Phones["shipping"] != "0048 600 700 800" || o.Phones["order"] != "" {
		t.Fatalf("phones %v", o.Phones)
	}
	for topic, key := range map[string]string{"orders/paid": templates.OrderPaid, "orders/fulfilled": templates.OrderShipped,
		"orders/cancelled": templates.OrderCancelled} {
		if ev, err := ParseShopify(topic, read(t, "shopify_orders_create.json")); err != nil || ev.Key != key || ev.Admin {
			t.Errorf("%s: %+v %v", topic, ev, err)
		}
	}
}

func TestShopifyFulfillmentAndRefund(t *testing.T) {
	t.Parallel()
	ev, err := ParseShopify("fulfillments/create", read(t, "shopify_fulfillments_create.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Key != templates.OrderShipped || ev.Order.ID != "5832907456789" || ev.Order.Number != "#1042" || !ev.Order.Partial ||
		ev.Order.Tracking.Carrier != "InPost" || ev.Order.Tracking.Number != "620123456789012345678901" {
		t.Fatalf("%+v", ev)
	}
	ev, err = ParseShopify("refunds/create", read(t, "shopify_refunds_create.json"))
	if err != nil || ev.Key != templates.OrderRefunded || ev.Order.ID != "5832907456789" {
		t.Fatalf("%+v %v", ev, err)
	}
	// Memory fills what the refund lacks.
	first, _ := ParseShopify("orders/create", read(t, "shopify_orders_create.json"))
	ev.Order.Merge(first.Order)
	if ev.Order.Number != "#1042" || ev.Order.Phones["billing"] != "+48 512 345 678" {
		t.Fatalf("merged %+v", ev.Order)
	}
}

func TestWooStatuses(t *testing.T) {
	t.Parallel()
	body := string(read(t, "woocommerce_order.json"))
	ev, err := ParseWoo("order.created", []byte(body))
	if err != nil || ev.Key != templates.OrderCreated || !ev.Admin || ev.Order.Number != "727" || ev.Order.Currency != "BRL" ||
		ev.Order.FirstName != "João" || ev.Order.Phones["billing"] != "(11) 98765-4321" || ev.Order.Tracking.Number != "QB123456789BR" {
		t.Fatalf("%+v %v", ev, err)
	}
	for status, key := range map[string]string{"processing": templates.OrderPaid, "on-hold": templates.OrderOnHold,
		"completed": templates.OrderShipped, "shipped": templates.OrderShipped, "cancelled": templates.OrderCancelled,
		"refunded": templates.OrderRefunded, "pending": "", "failed": "", "checkout-draft": ""} {
		b := strings.Replace(body, `"status": "processing"`, `"status": "`+status+`"`, 1)
		ev, err := ParseWoo("order.updated", []byte(b))
		if err != nil || ev.Key != key || (key == "" && ev.Why == "") {
			t.Errorf("%s: %+v %v", status, ev, err)
		}
	}
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ platform, topic, body string }{
		{Shopify, "orders/create", `{"id": 1, "name": `},
		{Shopify, "orders/create", `[1,2]`},
		{Shopify, "orders/create", `{"name":"#1"}`},
		{Shopify, "refunds/create", `{}`},
		{Shopify, "fulfillments/update", `"x"`},
		{WooCommerce, "order.updated", `{"id": {}}`},
		{WooCommerce, "order.created", `null`},
	} {
		if _, err := Parse(c.platform, c.topic, []byte(c.body)); err == nil {
			t.Errorf("%s %s %s: no error", c.platform, c.topic, c.body)
		}
	}
	if ev, err := Parse(Shopify, "products/create", []byte(`{}`)); err != nil || ev.Key != "" || ev.Why == "" {
		t.Errorf("unhandled topic: %+v %v", ev, err)
	}
}
