package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// storesTestdata holds the platform payloads (built from Shopify's and
// WooCommerce's published order schemas).
const storesTestdata = "../../services/stores/testdata/"

func payload(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(storesTestdata + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shopSign signs body as both platforms do: base64 HMAC-SHA256 of the raw body.
func shopSign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func shopify(t *testing.T, url, secret, topic, delivery, body string) response {
	t.Helper()
	return do(t, "POST", url, body, "X-Shopify-Hmac-Sha256", shopSign(secret, body), "X-Shopify-Topic", topic,
		"X-Shopify-Webhook-Id", delivery, "X-Shopify-Shop-Domain", "sklep-przyklad.myshopify.com")
}

func woo(t *testing.T, url, secret, topic, delivery, body string) response {
	t.Helper()
	return do(t, "POST", url, body, "X-WC-Webhook-Signature", shopSign(secret, body), "X-WC-Webhook-Topic", topic,
		"X-WC-Webhook-Delivery-ID", delivery, "X-WC-Webhook-Source", "https://loja.example.com.br/")
}

// storeLog returns a store's log entries, newest first (every page).
func storeLog(t *testing.T, api string) []map[string]any {
	t.Helper()
	var out []map[string]any
	cursor := ""
	for {
		r := do(t, "GET", api+"/log?limit=7"+cursor, nil)
		if r.status != 200 {
			t.Fatalf("log: %d %s", r.status, r.body)
		}
		m := r.json(t)
		for _, e := range m["entries"].([]any) {
			out = append(out, e.(map[string]any))
		}
		next, _ := m["nextCursor"].(string)
		if next == "" {
			return out
		}
		cursor = "&cursor=" + next
	}
}

// waitLog waits until the log holds n entries.
func waitLog(t *testing.T, api string, n int) []map[string]any {
	t.Helper()
	var got []map[string]any
	testkit.EventuallyEvery(t, 30*time.Second, 100*time.Millisecond, fmt.Sprintf("%d log entries", n), func() bool {
		got = storeLog(t, api)
		return len(got) >= n
	})
	if len(got) != n {
		t.Fatalf("log has %d entries, want %d: %v", len(got), n, got)
	}
	return got
}

// The stores endpoints through the real server: a signed Shopify
// orders/create delivery becomes messages (customer and admin) visible via
// GET /api/{token}/messages/{hash}; redeliveries, a status reached twice,
// bad signatures, malformed JSON, opt-outs, WooCommerce's ping and status
// mapping with tracking, preview and deletion.
func TestStoresEndToEnd(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, map[string]string{"APITOSMS_PUBLIC_URL": "https://sms.example.com", "APITOSMS_READ_RATE_LIMIT": "100000"})
		_, tok := account(t, p.base, 1000, 60)
		_, other := account(t, p.base, 1000, 60)
		stores := p.base + "/api/" + tok + "/stores"

		// Validation.
		wantError(t, do(t, "POST", stores, "{nope"), 400, "invalid_json")
		wantError(t, do(t, "POST", stores, map[string]any{"platform": "magento", "name": "x", "defaultCountry": "US"}), 400, "invalid_body")
		wantError(t, do(t, "POST", stores, map[string]any{"platform": "shopify", "name": "x", "defaultCountry": "US"}), 400, "invalid_body") // secret required
		wantError(t, do(t, "POST", stores, map[string]any{"platform": "shopify", "name": "x", "secret": "shpss_0123456789", "defaultCountry": "XX"}), 400, "invalid_body")
		wantError(t, do(t, "POST", stores, map[string]any{"platform": "shopify", "name": "x", "secret": "shpss_0123456789", "defaultCountry": "US",
			"templates": map[string]any{"order_paid": map[string]any{"text": "Hi {customer_name}"}}}), 400, "invalid_template")
		wantError(t, do(t, "POST", stores, map[string]any{"platform": "shopify", "name": "x", "secret": "shpss_0123456789", "defaultCountry": "US",
			"templates": map[string]any{"order_lost": map[string]any{"text": "Hi"}}}), 400, "invalid_template")
		wantError(t, do(t, "POST", stores, map[string]any{"platform": "shopify", "name": "x", "secret": "shpss_0123456789", "defaultCountry": "US",
			"adminPhones": []string{"12"}}), 400, "invalid_body")

		const secret = "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"
		r := do(t, "POST", stores, map[string]any{"platform": "shopify", "name": "Pracownia Glina", "secret": secret,
			"defaultCountry": "PL", "adminPhones": []string{"601 111 222"},
			"templates": map[string]any{"order_created": map[string]any{"enabled": true, "text": "{shop_name}: dziękujemy {customer_first_name}! Zamówienie {order_number}, {total} {currency}."}}})
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		st := r.json(t)
		id := st["id"].(string)
		if len(id) != 35 || strings.Contains(id, tok) {
			t.Fatalf("id %q", id)
		}
		if st["webhookUrl"] != "https://sms.example.com/hooks/shopify/"+id {
			t.Fatalf("webhookUrl %v", st["webhookUrl"])
		}
		if got := fmt.Sprint(st["adminPhones"]); got != "[+48601111222]" {
			t.Fatalf("adminPhones %s", got)
		}
		api := stores + "/" + id
		for _, u := range []string{stores, api} {
			if r := do(t, "GET", u, nil); r.status != 200 || strings.Contains(string(r.body), secret) || strings.Contains(string(r.body), `"secret"`) {
				t.Fatalf("GET %s: %d %s", u, r.status, r.body)
			}
		}
		wantError(t, do(t, "GET", p.base+"/api/"+other+"/stores/"+id, nil), 404, "store_not_found")
		wantError(t, do(t, "GET", stores+"/st_nope", nil), 404, "store_not_found")

		// Preview: the saved template with a sample order; GSM-7 vs UCS-2.
		r = do(t, "POST", api+"/preview", map[string]any{"event": "order_cancelled"})
		if m := r.json(t); r.status != 200 || m["text"] != "Pracownia Glina: order #1042 was cancelled." || m["segments"] != 1.0 || m["encoding"] != "GSM-7" {
			t.Fatalf("preview: %d %s", r.status, r.body)
		}
		r = do(t, "POST", api+"/preview", map[string]any{"event": "order_created", "order": rawJSON(payload(t, "shopify_orders_create.json"))})
		if m := r.json(t); r.status != 200 || m["text"] != "Pracownia Glina: dziękujemy Łukasz! Zamówienie #1042, 59.90 EUR." || m["encoding"] != "UCS-2" {
			t.Fatalf("preview with order: %d %s", r.status, r.body)
		}
		wantError(t, do(t, "POST", api+"/preview", map[string]any{"event": "order_paid", "text": "{nope}"}), 400, "invalid_template")

		// Receiving: unknown store, wrong platform, bad or missing signature.
		hook := p.base + "/hooks/shopify/" + id
		body := payload(t, "shopify_orders_create.json")
		wantError(t, shopify(t, p.base+"/hooks/shopify/st_00000000000000000000000000000000", secret, "orders/create", "d0", body), 404, "store_not_found")
		wantError(t, woo(t, p.base+"/hooks/woocommerce/"+id, secret, "order.created", "d0", body), 404, "store_not_found")
		wantError(t, shopify(t, hook, "wrong-secret", "orders/create", "d0", body), 401, "invalid_signature")
		wantError(t, do(t, "POST", hook, body, "X-Shopify-Topic", "orders/create"), 401, "invalid_signature")
		wantError(t, do(t, "POST", hook, body+" ", "X-Shopify-Hmac-Sha256", shopSign(secret, body), "X-Shopify-Topic", "orders/create"), 401, "invalid_signature")

		// More than 1 MiB, even signed: 413, nothing stored (the log below
		// holds only what follows).
		big := `{"id": 1, "note": "` + strings.Repeat("x", 1<<20) + `"}`
		wantError(t, shopify(t, hook, secret, "orders/create", "d-big", big), 413, "body_too_large")

		// A signed orders/create: the customer (billing phone) and the admin.
		if r := shopify(t, hook, secret, "orders/create", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", body); r.status != 200 {
			t.Fatalf("hook: %d %s", r.status, r.body)
		}
		log := waitLog(t, api, 2)
		hashes := map[string]string{}
		for _, e := range log {
			if e["decision"] != "queued" || e["topic"] != "orders/create" || e["orderNumber"] != "#1042" {
				t.Fatalf("entry %v", e)
			}
			hashes[e["recipient"].(string)] = e["hash"].(string)
		}
		msg := do(t, "GET", p.base+"/api/"+tok+"/messages/"+hashes["customer"], nil)
		if m := msg.json(t); msg.status != 200 || m["phone"] != "+48512345678" || m["text"] != "Pracownia Glina: dziękujemy Łukasz! Zamówienie #1042, 59.90 EUR." || m["statusName"] != "new" {
			t.Fatalf("customer message: %d %s", msg.status, msg.body)
		}
		msg = do(t, "GET", p.base+"/api/"+tok+"/messages/"+hashes["admin"], nil)
		if m := msg.json(t); msg.status != 200 || m["phone"] != "+48601111222" || !strings.Contains(m["text"].(string), "new order #1042, 59.90 EUR, from Łukasz Wiśniewski") {
			t.Fatalf("admin message: %d %s", msg.status, msg.body)
		}

		// The platform retries (same delivery id) and sends the same event
		// again (another id): nothing more is sent.
		shopify(t, hook, secret, "orders/create", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", body)
		shopify(t, hook, secret, "orders/create", "another-delivery", body)
		log = waitLog(t, api, 5)
		decisions := map[string]int{}
		for _, e := range log[:3] {
			decisions[e["decision"].(string)]++
			if e["decision"] == "queued" {
				t.Fatalf("sent again: %v", e)
			}
		}
		if decisions["duplicate"] != 3 {
			t.Fatalf("decisions %v", decisions)
		}

		// Malformed JSON with a valid signature: 200, logged as rejected.
		if r := shopify(t, hook, secret, "orders/paid", "bad-json", `{"id": 5832907456789, "name": `); r.status != 200 {
			t.Fatalf("malformed: %d %s", r.status, r.body)
		}
		log = waitLog(t, api, 6)
		if log[0]["decision"] != "rejected" {
			t.Fatalf("malformed: %v", log[0])
		}

		// A fulfillment (tracking, shipping phone from its destination).
		if r := shopify(t, hook, secret, "fulfillments/create", "f-1", payload(t, "shopify_fulfillments_create.json")); r.status != 200 {
			t.Fatal(r.status)
		}
		log = waitLog(t, api, 7)
		if log[0]["decision"] != "queued" || log[0]["event"] != "order_shipped" {
			t.Fatalf("fulfillment: %v", log[0])
		}
		msg = do(t, "GET", p.base+"/api/"+tok+"/messages/"+log[0]["hash"].(string), nil)
		if m := msg.json(t); m["text"] != "Pracownia Glina: order #1042 has shipped. InPost 620123456789012345678901 https://inpost.pl/sledzenie-przesylek?number=620123456789012345678901" ||
			m["phone"] != "+48512345678" {
			t.Fatalf("shipped message: %s", msg.body)
		}

		// Opt-outs: the billing phone opts out; the refund (customer known
		// from orders/create) is skipped with the reason.
		optOuts := p.base + "/api/" + tok + "/opt-outs"
		wantError(t, do(t, "POST", optOuts, map[string]any{"phones": []string{"512 345 678"}}), 400, "invalid_phone")
		r = do(t, "POST", optOuts, "phone\n+48 512 345 678\n+1 (415) 555-0132\n", "Content-Type", "text/csv")
		if m := r.json(t); r.status != 200 || m["added"] != 2.0 {
			t.Fatalf("opt-out csv: %d %s", r.status, r.body)
		}
		if r := do(t, "GET", optOuts, nil); string(r.body) != `{"phones":["+14155550132","+48512345678"]}` {
			t.Fatalf("opt-outs: %s", r.body)
		}
		if r := do(t, "GET", p.base+"/api/"+other+"/opt-outs", nil); string(r.body) != `{"phones":[]}` {
			t.Fatalf("other's opt-outs: %s", r.body)
		}
		shopify(t, hook, secret, "refunds/create", "r-1", payload(t, "shopify_refunds_create.json"))
		log = waitLog(t, api, 8)
		if log[0]["decision"] != "skipped" || log[0]["reason"] != "phone opted out" || log[0]["event"] != "order_refunded" {
			t.Fatalf("opted out: %v", log[0])
		}
		if r := do(t, "DELETE", optOuts, map[string]any{"phones": []string{"+14155550132"}}); r.json(t)["removed"] != 1.0 {
			t.Fatalf("remove opt-out: %s", r.body)
		}

		// WooCommerce: a generated secret, the unsigned creation ping, and
		// status transitions (a status reached twice sends once).
		r = do(t, "POST", stores, map[string]any{"platform": "woocommerce", "name": "Loja Verde", "defaultCountry": "BR",
			"phoneFrom": []string{"shipping", "billing"}})
		if r.status != 201 {
			t.Fatalf("woo create: %d %s", r.status, r.body)
		}
		ws := r.json(t)
		wsecret, _ := ws["secret"].(string)
		if len(wsecret) < 32 {
			t.Fatalf("woo secret %q", wsecret)
		}
		wapi := stores + "/" + ws["id"].(string)
		whook := p.base + "/hooks/woocommerce/" + ws["id"].(string)
		if r := do(t, "POST", whook, "webhook_id=17", "Content-Type", "application/x-www-form-urlencoded"); r.status != 200 {
			t.Fatalf("ping: %d %s", r.status, r.body)
		}
		order := payload(t, "woocommerce_order.json")
		woo(t, whook, wsecret, "order.updated", "101", order) // processing: order_paid
		woo(t, whook, wsecret, "order.updated", "102", order) // processing again: once
		completed := strings.Replace(order, `"status": "processing"`, `"status": "completed"`, 1)
		woo(t, whook, wsecret, "order.updated", "103", completed)
		failed := strings.Replace(order, `"status": "processing"`, `"status": "failed"`, 1)
		woo(t, whook, wsecret, "order.updated", "104", failed)
		wlog := waitLog(t, wapi, 4)
		byDelivery := map[string]map[string]any{}
		for _, e := range wlog {
			byDelivery[e["deliveryId"].(string)] = e
		}
		if e := byDelivery["101"]; e["decision"] != "queued" || e["event"] != "order_paid" || e["orderNumber"] != "727" {
			t.Fatalf("101: %v", e)
		}
		if e := byDelivery["102"]; e["decision"] != "duplicate" {
			t.Fatalf("102: %v", e)
		}
		if e := byDelivery["104"]; e["decision"] != "skipped" {
			t.Fatalf("104: %v", e)
		}
		e := byDelivery["103"]
		msg = do(t, "GET", p.base+"/api/"+tok+"/messages/"+e["hash"].(string), nil)
		if m := msg.json(t); m["phone"] != "+5511987654321" ||
			m["text"] != "Loja Verde: order 727 has shipped. correios QB123456789BR https://rastreamento.correios.com.br/app/index.php?objetos=QB123456789BR" {
			t.Fatalf("woo shipped: %s", msg.body)
		}

		// PATCH: a template disabled is skipped; the platform cannot change.
		wantError(t, do(t, "PATCH", wapi, map[string]any{"platform": "shopify"}), 400, "invalid_body")
		r = do(t, "PATCH", wapi, map[string]any{"templates": map[string]any{"order_cancelled": map[string]any{"enabled": false}}})
		if r.status != 200 || r.json(t)["templates"].(map[string]any)["order_cancelled"].(map[string]any)["enabled"] != false {
			t.Fatalf("patch: %d %s", r.status, r.body)
		}
		woo(t, whook, wsecret, "order.updated", "105", strings.Replace(order, `"status": "processing"`, `"status": "cancelled"`, 1))
		wlog = waitLog(t, wapi, 5)
		if wlog[0]["decision"] != "skipped" || wlog[0]["reason"] != "template order_cancelled disabled" {
			t.Fatalf("disabled: %v", wlog[0])
		}

		// Deleted: the receiving endpoint answers 404.
		if r := do(t, "DELETE", api, nil); r.status != 204 {
			t.Fatalf("delete: %d", r.status)
		}
		wantError(t, shopify(t, hook, secret, "orders/create", "after-delete", body), 404, "store_not_found")
		wantError(t, do(t, "GET", api, nil), 404, "store_not_found")
	})
}

// rawJSON embeds a JSON text as is in a request body.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

// At most once across SIGKILL: the stores service, in its own process, is
// killed while it turns stored deliveries into SMS (between "stored" and
// "queued"); after a restart every order has exactly one message. The
// deliveries are stored first (through the receiving endpoint, then
// straight into the stream while the service is down, so that a backlog is
// waiting when it starts), and the kill comes once the first SMS are queued.
func TestStoresSurviveSIGKILL(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := start(t, b, map[string]string{"APITOSMS_READ_RATE_LIMIT": "100000"}, "-target=billing,queue,status,ingress")
		br := b.Broker(t)
		_, tok := account(t, p.base, 100000, 60)
		addr := freeAddr(t)
		cmd := startTargetOS(t, b, "stores", addr)
		r := do(t, "POST", p.base+"/api/"+tok+"/stores", map[string]any{"platform": "woocommerce", "name": "Loja",
			"secret": "kill-test-secret", "defaultCountry": "BR"})
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		id := r.json(t)["id"].(string)
		hook := "http://" + addr + "/hooks/woocommerce/" + id
		order := payload(t, "woocommerce_order.json")
		body := func(i int) string { return strings.Replace(order, `"id": 727,`, fmt.Sprintf(`"id": %d,`, 10000+i), 1) }
		const viaHTTP, total = 50, 1000
		for i := 0; i < viaHTTP; i++ {
			if r := woo(t, hook, "kill-test-secret", "order.created", fmt.Sprint(i), body(i)); r.status != 200 {
				t.Fatalf("hook %d: %d %s", i, r.status, r.body)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		for i := viaHTTP; i < total; i++ {
			msg := b.Names.StoreHookMsg(events.StoreHook{StoreID: id, Platform: "woocommerce", Topic: "order.created",
				DeliveryID: fmt.Sprint(i), ReceivedAt: time.Now(), Body: []byte(body(i))})
			if _, err := br.JS.PublishMsg(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
		}
		count := func() int {
			r, err := send("GET", p.base+"/api/"+tok+"/messages?limit=500", nil)
			if err != nil || r.status != 200 {
				return -1
			}
			n := len(r.json(t)["messages"].([]any))
			for next, _ := r.json(t)["nextCursor"].(string); next != ""; {
				r = do(t, "GET", p.base+"/api/"+tok+"/messages?limit=500&cursor="+next, nil)
				n += len(r.json(t)["messages"].([]any))
				next, _ = r.json(t)["nextCursor"].(string)
			}
			return n
		}
		cmd = startTargetOS(t, b, "stores", addr)
		testkit.Eventually(t, 30*time.Second, "more SMS queued", func() bool { return count() > viaHTTP })
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		before := count()
		startTargetOS(t, b, "stores", addr)
		testkit.Eventually(t, 60*time.Second, "every order queued", func() bool { return count() >= total })
		// The stream is drained once the log holds every delivery.
		testkit.EventuallyEvery(t, 60*time.Second, 200*time.Millisecond, "every delivery logged", func() bool {
			return len(storeLog(t, p.base+"/api/"+tok+"/stores/"+id)) >= total
		})
		if n := count(); n != total {
			t.Fatalf("%d messages for %d orders", n, total)
		}
		t.Logf("%d of %d orders queued at the SIGKILL; all %d after restart, none twice", before, total, total)
	})
}

// A store deleted while its delivery waits in the stream sends nothing:
// the delivery is stored (as the receiving endpoint would), the store is
// deleted, and the consumer drops it; a later delivery of a live store is
// processed after it and is the account's only message.
func TestStoresDeletedInFlight(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := start(t, b, map[string]string{"APITOSMS_READ_RATE_LIMIT": "100000"})
		br := b.Broker(t)
		_, tok := account(t, p.base, 1000, 60)
		create := func(name string) string {
			r := do(t, "POST", p.base+"/api/"+tok+"/stores", map[string]any{"platform": "woocommerce", "name": name,
				"secret": "in-flight-secret", "defaultCountry": "BR"})
			if r.status != 201 {
				t.Fatalf("create: %d %s", r.status, r.body)
			}
			return r.json(t)["id"].(string)
		}
		gone, live := create("Gone"), create("Live")
		if r := do(t, "DELETE", p.base+"/api/"+tok+"/stores/"+gone, nil); r.status != 204 {
			t.Fatalf("delete: %d", r.status)
		}
		order := payload(t, "woocommerce_order.json")
		for _, id := range []string{gone, live} {
			msg := b.Names.StoreHookMsg(events.StoreHook{StoreID: id, Platform: "woocommerce", Topic: "order.created",
				DeliveryID: "in-flight-" + id, ReceivedAt: time.Now(), Body: []byte(order)})
			if _, err := br.JS.PublishMsg(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
		}
		log := waitLog(t, p.base+"/api/"+tok+"/stores/"+live, 1)
		if log[0]["decision"] != "queued" {
			t.Fatalf("live store: %v", log[0])
		}
		msgs := do(t, "GET", p.base+"/api/"+tok+"/messages", nil).json(t)["messages"].([]any)
		if len(msgs) != 1 {
			t.Fatalf("%d messages, want only the live store's", len(msgs))
		}
	})
}

// One consumer batch decides as the deliveries would one by one, in order:
// a stream message holding an order's creation, its retry, the same event
// under another delivery id, a refund that finds the customer's phone only
// in what the creation taught, and a malformed body.
func TestStoresOneBatch(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := start(t, b, map[string]string{"APITOSMS_READ_RATE_LIMIT": "100000"})
		br := b.Broker(t)
		_, tok := account(t, p.base, 1000, 60)
		r := do(t, "POST", p.base+"/api/"+tok+"/stores", map[string]any{"platform": "shopify", "name": "Pracownia Glina",
			"secret": "one-batch-secret", "defaultCountry": "PL", "adminPhones": []string{"601 111 222"},
			"templates": map[string]any{"order_created": map[string]any{"enabled": true}}})
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		id := r.json(t)["id"].(string)
		created, refund := payload(t, "shopify_orders_create.json"), payload(t, "shopify_refunds_create.json")
		var hooks []events.StoreHook
		for _, h := range [][3]string{{"orders/create", "c-1", created}, {"orders/create", "c-1", created},
			{"orders/create", "c-2", created}, {"refunds/create", "r-1", refund}, {"orders/paid", "bad", `{"id": 1, "name": `}} {
			hooks = append(hooks, events.StoreHook{StoreID: id, Platform: "shopify", Topic: h[0], DeliveryID: h[1],
				ReceivedAt: time.Now(), Body: []byte(h[2])})
		}
		msg, err := b.Names.StoreHookBatchMsg("one-batch", hooks)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := br.JS.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		log := waitLog(t, p.base+"/api/"+tok+"/stores/"+id, 7)
		var got []string
		for i := len(log) - 1; i >= 0; i-- { // oldest first
			var f []string
			for _, k := range []string{"deliveryId", "event", "recipient", "decision", "reason"} {
				if v := log[i][k]; v != nil { // absent values are null
					f = append(f, fmt.Sprint(v))
				} else {
					f = append(f, "")
				}
			}
			got = append(got, strings.Join(f, " "))
		}
		want := []string{
			"c-1 order_created customer queued ", "c-1 admin_new_order admin queued ",
			"c-1   duplicate delivery already processed",
			"c-2 order_created customer duplicate another delivery of this order and event pending",
			"c-2 admin_new_order admin duplicate another delivery of this order and event pending",
			"r-1 order_refunded customer queued ",
			"bad   rejected " + fmt.Sprint(log[0]["reason"]),
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		msgs := do(t, "GET", p.base+"/api/"+tok+"/messages", nil).json(t)["messages"].([]any)
		if len(msgs) != 3 {
			t.Fatalf("%d messages, want 3", len(msgs))
		}
		for _, m := range msgs {
			if ph := m.(map[string]any)["phone"]; ph != "+48512345678" && ph != "+48601111222" {
				t.Fatalf("message to %v", ph)
			}
		}
	})
}
