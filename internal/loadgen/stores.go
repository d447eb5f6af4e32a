package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ModeStores connects a WooCommerce store to each merchant's account
// (contract §13) and, for the window, senders POST signed order.created
// deliveries, each a new order, to the stores' receiving endpoints, as a
// shop does on checkout. After the window the run waits until every
// delivery answered 200 became a queued SMS (the server's
// apitosms_stores_queued_messages_total), so the window's CPU covers the
// whole path: receiving, storing, deciding and queueing.
const ModeStores = "stores"

// queuedMetric counts the SMS the stores service queued.
const queuedMetric = "apitosms_stores_queued_messages_total"

// Stores is the stores mode's work: deliveries answered 200 (verified and
// durably stored) per second of sending, and the SMS they became per
// second from the first delivery to the last SMS queued.
type Stores struct {
	Deliveries       int64   `json:"deliveries"`
	DeliveriesPerSec float64 `json:"deliveriesPerSec"`
	Queued           int64   `json:"queued"`
	OrdersPerSec     float64 `json:"ordersPerSec"`
}

// storeSender posts deliveries to its stores round robin until stop.
type storeSender struct {
	client  *http.Client
	stores  []benchStore
	next    *atomic.Int64 // order and delivery ids, shared by every sender
	latency Histogram
	ok      int64
	errs    errorCounts
}

type benchStore struct{ url, secret string }

// connectStores creates a WooCommerce store per token and returns their
// receiving URLs with their secrets.
func connectStores(ctx context.Context, c *http.Client, baseURL string, tokens []string) ([]benchStore, error) {
	out := make([]benchStore, 0, len(tokens))
	for _, tok := range tokens {
		secret := make([]byte, 16)
		_, _ = rand.Read(secret)
		s := benchStore{secret: hex.EncodeToString(secret)}
		body := map[string]any{"platform": "woocommerce", "name": "Bench shop", "secret": s.secret, "defaultCountry": "BR"}
		var created struct {
			ID string `json:"id"`
		}
		if err := adminCall(ctx, c, http.MethodPost, baseURL+"/api/"+tok+"/stores", "", body, http.StatusCreated, &created); err != nil {
			return nil, fmt.Errorf("connect a bench store: %w", err)
		}
		s.url = baseURL + "/hooks/woocommerce/" + created.ID
		out = append(out, s)
	}
	return out, nil
}

func (w *storeSender) run(ctx context.Context, stop <-chan struct{}) {
	var buf bytes.Buffer
	for ctx.Err() == nil {
		select {
		case <-stop:
			return
		default:
		}
		n := w.next.Add(1)
		s := w.stores[n%int64(len(w.stores))]
		body := wooOrder(n)
		mac := hmac.New(sha256.New, []byte(s.secret))
		mac.Write(body)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
		if err != nil {
			w.errs.add("store hook", 0)
			return
		}
		id := strconv.FormatInt(n, 10)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-WC-Webhook-Topic", "order.created")
		req.Header.Set("X-WC-Webhook-Delivery-ID", id)
		req.Header.Set("X-WC-Webhook-Signature", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		start := time.Now()
		resp, err := w.client.Do(req)
		if err != nil {
			w.errs.add("store hook", 0)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		buf.Reset()
		_, _ = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			w.errs.add("store hook", resp.StatusCode)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		w.latency.Record(time.Since(start))
		w.ok++
	}
}

// runStores sends deliveries until stop, then waits until the server has
// queued an SMS for each one answered 200 (HookWait without progress at
// most), and fills r's stores figures.
func (r *run) runStores(ctx context.Context, stop <-chan struct{}) {
	before, err := queuedSMS(ctx, r.client, r.cfg.URL)
	if err != nil {
		r.storesErr = err
		return
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, w := range r.senders {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx, stop) }()
	}
	wg.Wait()
	sending := time.Since(start)
	var sent int64
	for _, w := range r.senders {
		sent += w.ok
	}
	queued, idle := int64(0), time.Now()
	for ctx.Err() == nil && time.Since(idle) < r.cfg.HookWait {
		n, err := queuedSMS(ctx, r.client, r.cfg.URL)
		if err != nil {
			r.storesErr = err
			return
		}
		if n-before != queued {
			queued, idle = n-before, time.Now()
		}
		if queued >= sent {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.stores = &Stores{Deliveries: sent, DeliveriesPerSec: float64(sent) / sending.Seconds(),
		Queued: queued, OrdersPerSec: float64(queued) / time.Since(start).Seconds()}
}

// queuedSMS reads the stores service's queued-SMS counter (every series
// summed) from the server's /metrics.
func queuedSMS(ctx context.Context, client *http.Client, baseURL string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read server metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("read server metrics: %s", resp.Status)
	}
	return parseCounter(bufio.NewScanner(resp.Body), queuedMetric)
}

// parseCounter sums the series of the counter name in Prometheus text
// exposition lines; a counter missing from them is an error.
func parseCounter(sc *bufio.Scanner, name string) (int64, error) {
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var sum float64
	found := false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("parse %q: %w", line, err)
		}
		sum += v
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("/metrics has no %s (is the stores service running?)", name)
	}
	return int64(sum), nil
}

// wooOrder is WooCommerce's order JSON (REST API v3, as its webhooks send
// it) for a new order numbered n: a Brazilian shop's processing order with
// two line items, unicode names and a phone in national format, about
// 2 KB.
func wooOrder(n int64) []byte {
	b := make([]byte, 0, 2304)
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `,"parent_id":0,"status":"processing","currency":"BRL","version":"9.4.2","prices_include_tax":false,`+
		`"date_created":"2026-11-30T10:31:06","date_created_gmt":"2026-11-30T13:31:06","discount_total":"0.00","shipping_total":"15.00",`+
		`"total":"134.90","total_tax":"0.00","customer_id":0,"order_key":"wc_order_`...)
	b = strconv.AppendInt(b, n, 36)
	b = append(b, `","number":"`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `","billing":{"first_name":"João","last_name":"Conceição","company":"","address_1":"Rua das Laranjeiras, 1500",`+
		`"address_2":"apto 302","city":"São Paulo","state":"SP","postcode":"01415-001","country":"BR","email":"joao@example.com",`+
		`"phone":"(11) 98765-4321"},"shipping":{"first_name":"João","last_name":"Conceição","company":"","address_1":"Rua das Laranjeiras, 1500",`+
		`"address_2":"apto 302","city":"São Paulo","state":"SP","postcode":"01415-001","country":"BR","phone":""},`+
		`"payment_method":"pix","payment_method_title":"Pix","transaction_id":"","customer_note":"Deixar com o porteiro 🙏",`+
		`"date_paid":null,"date_completed":null,"line_items":[`+
		`{"id":315,"name":"Café especial 500 g","product_id":93,"variation_id":0,"quantity":2,"tax_class":"","subtotal":"79.80",`+
		`"total":"79.80","sku":"CAFE-500","price":39.9,"meta_data":[{"id":2001,"key":"moagem","value":"Grãos inteiros"}]},`+
		`{"id":316,"name":"Caneca esmaltada","product_id":71,"variation_id":0,"quantity":1,"tax_class":"","subtotal":"40.10",`+
		`"total":"40.10","sku":"CAN-01","price":40.1,"meta_data":[]}],`+
		`"shipping_lines":[{"id":317,"method_title":"SEDEX","method_id":"correios-sedex","total":"15.00"}],`+
		`"fee_lines":[],"coupon_lines":[],"refunds":[],"meta_data":[{"id":5001,"key":"_billing_cpf","value":"000.000.000-00"}],`+
		`"_links":{"self":[{"href":"https://loja.example.com.br/wp-json/wc/v3/orders/`...)
	b = strconv.AppendInt(b, n, 10)
	return append(b, `"}]}}`...)
}
