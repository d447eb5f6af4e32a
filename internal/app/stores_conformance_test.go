package app

import (
	"strings"
	"testing"
)

// storesConformance drives every store, opt-out and receiving operation
// (§13) through its declared answers. The server runs with
// APITOSMS_STORES_MAX=2 and a 4096-byte body limit.
func storesConformance(t *testing.T, o *oapi, js func(any) []byte) { //nolint:thelper // a suite body: failures must point inside it
	tok := newAccount(t, o, js, 100, 60)
	tp := map[string]string{"token": tok}
	list := "/api/{token}/stores"
	one, preview, log := list+"/{id}", list+"/{id}/preview", list+"/{id}/log"
	ref := func(id string) map[string]string { return map[string]string{"token": tok, "id": id} }
	missing := ref("st_" + strings.Repeat("0", 32))
	big := []byte(`{"name":"` + strings.Repeat("n", 5000) + `"}`)

	for _, body := range [][]byte{[]byte(`{nope`), js(map[string]any{"platform": "x"}),
		js(map[string]any{"platform": "woocommerce", "name": "W", "defaultCountry": "US", "templates": map[string]any{"order_paid": map[string]any{"text": "{nope}"}}}),
		big} {
		if r := o.call(t, "POST", list, tp, "", body); r.status < 400 {
			t.Fatalf("create with %.40s: %d", body, r.status)
		}
	}
	const secret = "conformance-secret"
	r := o.call(t, "POST", list, tp, "", js(map[string]any{"platform": "shopify", "name": "S", "secret": secret, "defaultCountry": "US"}))
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	sid := r.json(t)["id"].(string)
	r = o.call(t, "POST", list, tp, "", js(map[string]any{"platform": "woocommerce", "name": "W", "defaultCountry": "BR"}))
	wid, wsecret := r.json(t)["id"].(string), r.json(t)["secret"].(string)
	if r := o.call(t, "POST", list, tp, "", js(map[string]any{"platform": "woocommerce", "name": "W3", "defaultCountry": "BR"})); r.status != 409 {
		t.Fatalf("third store: %d", r.status)
	}
	o.call(t, "GET", list, tp, "", nil)
	o.call(t, "GET", one, ref(sid), "", nil)
	o.call(t, "GET", one, missing, "", nil)
	for _, body := range [][]byte{[]byte(`{nope`), js(map[string]any{"defaultCountry": "XX"}),
		js(map[string]any{"templates": map[string]any{"order_lost": map[string]any{"enabled": true}}}), big} {
		if r := o.call(t, "PATCH", one, ref(sid), "", body); r.status < 400 {
			t.Fatalf("patch with %.40s: %d", body, r.status)
		}
	}
	o.call(t, "PATCH", one, missing, "", js(map[string]any{"name": "x"}))
	if r := o.call(t, "PATCH", one, ref(sid), "", js(map[string]any{"adminPhones": []string{"+1 415 555 0132"},
		"templates": map[string]any{"order_on_hold": map[string]any{"enabled": false}}})); r.status != 200 {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}

	for _, body := range [][]byte{[]byte(`{nope`), js(map[string]any{"event": "order_paid", "order": []int{1}}),
		js(map[string]any{"event": "order_lost"}), big} {
		if r := o.call(t, "POST", preview, ref(sid), "", body); r.status < 400 {
			t.Fatalf("preview with %.40s: %d", body, r.status)
		}
	}
	o.call(t, "POST", preview, missing, "", js(map[string]any{"event": "order_paid"}))
	if r := o.call(t, "POST", preview, ref(sid), "", js(map[string]any{"event": "order_shipped"})); r.status != 200 {
		t.Fatalf("preview: %d %s", r.status, r.body)
	}

	// Receiving.
	sh, wh := "/hooks/shopify/{id}", "/hooks/woocommerce/{id}"
	order := payload(t, "shopify_orders_create.json")
	sign := func(s, body string) []string {
		return []string{"X-Shopify-Hmac-Sha256", shopSign(s, body), "X-Shopify-Topic", "orders/create", "X-Shopify-Webhook-Id", "conf-1"}
	}
	o.call(t, "POST", sh, map[string]string{"id": sid}, "", []byte(order), sign("wrong", order)...)
	o.call(t, "POST", sh, map[string]string{"id": wid}, "", []byte(order), sign(secret, order)...)
	if r := o.call(t, "POST", sh, map[string]string{"id": sid}, "", make([]byte, 2<<20), sign(secret, order)...); r.status != 413 {
		t.Fatalf("big hook: %d %s", r.status, r.body)
	}
	if r := o.call(t, "POST", sh, map[string]string{"id": sid}, "", []byte(order), sign(secret, order)...); r.status != 200 {
		t.Fatalf("shopify hook: %d %s", r.status, r.body)
	}
	worder := payload(t, "woocommerce_order.json")
	wsign := func(s string) []string {
		return []string{"X-WC-Webhook-Signature", shopSign(s, worder), "X-WC-Webhook-Topic", "order.created", "X-WC-Webhook-Delivery-ID", "9"}
	}
	o.call(t, "POST", wh, map[string]string{"id": wid}, "", []byte(worder), wsign("wrong")...)
	o.call(t, "POST", wh, map[string]string{"id": sid}, "", []byte(worder), wsign(wsecret)...)
	o.call(t, "POST", wh, map[string]string{"id": wid}, "", make([]byte, 2<<20), wsign(wsecret)...)
	if r := o.call(t, "POST", wh, map[string]string{"id": wid}, "", []byte("webhook_id=3"), "Content-Type", "application/x-www-form-urlencoded"); r.status != 200 {
		t.Fatalf("ping: %d %s", r.status, r.body)
	}
	if r := o.call(t, "POST", wh, map[string]string{"id": wid}, "", []byte(worder), wsign(wsecret)...); r.status != 200 {
		t.Fatalf("woo hook: %d %s", r.status, r.body)
	}

	o.call(t, "GET", log, ref(sid), "limit=0", nil)
	o.call(t, "GET", log, ref(sid), "cursor=nope", nil)
	o.call(t, "GET", log, missing, "", nil)
	if r := o.call(t, "GET", log, ref(sid), "limit=1", nil); r.status != 200 {
		t.Fatalf("log: %d %s", r.status, r.body)
	}

	// Opt-outs.
	oo := "/api/{token}/opt-outs"
	o.call(t, "GET", oo, tp, "", nil)
	for _, m := range []string{"POST", "DELETE"} {
		o.call(t, m, oo, tp, "", []byte(`[1]`))
		o.call(t, m, oo, tp, "", js(map[string]any{"phones": []string{"555"}}))
		if r := o.call(t, m, oo, tp, "", js(map[string]any{"phones": []string{"+14155550132"}})); r.status != 200 {
			t.Fatalf("%s opt-outs: %d %s", m, r.status, r.body)
		}
	}
	o.call(t, "POST", oo, tp, "", big)

	o.call(t, "DELETE", one, ref(sid), "", nil)
	o.call(t, "DELETE", one, ref(sid), "", nil)
}
