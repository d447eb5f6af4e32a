package loadgen

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// Quantiles of a known distribution come out within the histogram's 3%.
func TestHistogramQuantiles(t *testing.T) {
	var h, other Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	other.Record(time.Hour)
	h.Merge(&other)
	if h.Count() != 1001 {
		t.Fatalf("count %d", h.Count())
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.95, 950 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Hour}} {
		got := h.Quantile(c.q)
		if got < c.want || float64(got) > float64(c.want)*1.035 {
			t.Errorf("q%.2f = %v, want %v (+3%%)", c.q, got, c.want)
		}
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 {
		t.Error("empty histogram: want 0")
	}
}

// Every bucket's upper bound maps back to that bucket, and buckets grow.
func TestHistogramBuckets(t *testing.T) {
	prev := uint64(0)
	for i := 1; i < bucket(1<<62); i++ {
		u := upper(i)
		if bucket(u) != i || bucket(u+1) != i+1 || u <= prev {
			t.Fatalf("bucket %d: upper %d maps to %d, next to %d", i, u, bucket(u), bucket(u+1))
		}
		prev = u
	}
}

// A precomputed body is valid queue JSON, and Stamp writes the enqueue
// time into every text so that stampOf reads it back.
func TestBatchBodyStamp(t *testing.T) {
	b := newBatchBody(7, 3)
	now := time.Unix(0, 1_769_000_000_123_456_789)
	b.Stamp(now)
	var items []struct{ Phone, Message string }
	if err := json.Unmarshal(b.buf, &items); err != nil || len(items) != 3 {
		t.Fatalf("body %s: %v", b.buf, err)
	}
	for _, it := range items {
		got, ok := stampOf(it.Message)
		if !ok || !got.Equal(now) || len(it.Phone) != 12 {
			t.Fatalf("item %+v: stamp %v %v", it, got, ok)
		}
	}
	one := newBatchBody(1, 1)
	one.Stamp(now)
	var item map[string]string
	if err := json.Unmarshal(one.buf, &item); err != nil || item["phone"] == "" {
		t.Fatalf("single body %s: %v", one.buf, err)
	}
	if _, ok := stampOf("hello"); ok {
		t.Fatal("stampOf accepted a foreign text")
	}
}

// The queue response's counters are read without decoding the items.
func TestIntField(t *testing.T) {
	b := []byte(`{"ok":true,"queued":1234,"failed":5,"items":[{"index":0,"hash":"a","phone":"+1"}],"errors":[]}`)
	if q, f := intField(b, `"queued":`), intField(b, `"failed":`); q != 1234 || f != 5 {
		t.Fatalf("queued %d failed %d", q, f)
	}
	if intField(b, `"missing":`) != 0 {
		t.Fatal("missing field: want 0")
	}
}

// ReadProc reads this very process.
func TestReadProc(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PeakRSS <= 0 || s.RSS <= 0 || s.RSS > s.PeakRSS || s.CPUSeconds < 0 {
		t.Fatalf("%+v", s)
	}
}

func TestSpread(t *testing.T) {
	toks := []string{"a", "b", "c", "d"}
	if got := spread(toks, 8); len(got) != 8 || got[5][0] != "b" {
		t.Fatalf("8 phones: %v", got)
	}
	got := spread(toks, 3)
	n := 0
	for _, g := range got {
		n += len(g)
	}
	if len(got) != 3 || n != 4 {
		t.Fatalf("3 phones: %v", got)
	}
}

func TestParseLag(t *testing.T) {
	text := `# HELP apitosms_queue_consumer_pending_messages lag
# TYPE apitosms_queue_consumer_pending_messages gauge
apitosms_queue_consumer_pending_messages{durable="queue-ingest"} 12
apitosms_queue_consumer_pending_messages{durable="queue-reported"} 0
apitosms_status_consumer_pending_messages{durable="status-ingest"} 3
apitosms_queue_consumer_messages_total{durable="queue-ingest"} 99
`
	sum, series, err := parseLag(bufio.NewScanner(strings.NewReader(text)))
	if err != nil || sum != 15 || series != 3 {
		t.Fatalf("parseLag = %v, %d, %v; want 15, 3, nil", sum, series, err)
	}
	if _, _, err := parseLag(bufio.NewScanner(strings.NewReader(`apitosms_x_consumer_pending_messages{durable="a"} x`))); err == nil {
		t.Error("parseLag accepted a malformed value")
	}
}

// With extras, the chosen shares of items carry a far sendAt or a high
// priority, spread evenly, and Stamp still finds every text.
func TestBatchBodyExtras(t *testing.T) {
	b := newBatchBody(2, 1000, extras{scheduled: 0.5, high: 0.1})
	now := time.Unix(0, 1_769_000_000_123_456_789)
	b.Stamp(now)
	var items []struct {
		Message  string
		SendAt   string `json:"sendAt"`
		Priority string `json:"priority"`
	}
	if err := json.Unmarshal(b.buf, &items); err != nil || len(items) != 1000 {
		t.Fatalf("body: %v", err)
	}
	scheduled, high := 0, 0
	for _, it := range items {
		if got, ok := stampOf(it.Message); !ok || !got.Equal(now) {
			t.Fatalf("item %+v: stamp %v", it, got)
		}
		if it.SendAt != "" {
			if at, err := time.Parse(time.RFC3339, it.SendAt); err != nil || time.Until(at) < 28*24*time.Hour {
				t.Fatalf("sendAt %q", it.SendAt)
			}
			scheduled++
		}
		if it.Priority == "high" {
			high++
		}
	}
	if scheduled != 500 || high != 100 {
		t.Fatalf("%d scheduled, %d high; want 500 and 100", scheduled, high)
	}
}

// A merchant counts the accepted items that were scheduled: from the body
// when everything was accepted, from the item indexes when some failed.
func TestMerchantCountsScheduled(t *testing.T) {
	b := newBatchBody(0, 10, extras{scheduled: 0.5})
	if b.scheduled != 5 {
		t.Fatalf("body: %d scheduled, want 5", b.scheduled)
	}
	m := &merchant{errs: errorCounts{}}
	m.resp.WriteString(`{"ok":true,"queued":10,"failed":0,"items":[]}`)
	if q, f := m.parse(b); q != 10 || f != 0 || m.scheduled != 5 {
		t.Fatalf("all accepted: queued %d failed %d scheduled %d", q, f, m.scheduled)
	}
	// Items 0 and 1 accepted: takes(0.5, i) picks the odd indexes.
	m.resp.Reset()
	m.resp.WriteString(`{"ok":true,"queued":2,"failed":8,"items":[{"index":0,"hash":"a"},{"index":1,"hash":"b"}],"errors":[]}`)
	if q, f := m.parse(b); q != 2 || f != 8 || m.scheduled != 6 {
		t.Fatalf("partly accepted: queued %d failed %d scheduled %d", q, f, m.scheduled)
	}
}

// A token counts as drained only once its phones pulled all its due
// messages; an empty poll before that does not end it.
func TestTokenDue(t *testing.T) {
	var d tokenDue
	d.due.Store(3)
	d.pulled.Add(2)
	if d.drained() {
		t.Fatal("drained with 2 of 3 pulled")
	}
	d.pulled.Add(1)
	if !d.drained() {
		t.Fatal("not drained with 3 of 3 pulled")
	}
}

func TestParseCounter(t *testing.T) {
	t.Parallel()
	text := `# HELP apitosms_stores_queued_messages_total queued
# TYPE apitosms_stores_queued_messages_total counter
apitosms_stores_queued_messages_total{platform="shopify"} 4
apitosms_stores_queued_messages_total{platform="woocommerce"} 12
apitosms_stores_queued_messages_total_extra 1000
`
	n, err := parseCounter(bufio.NewScanner(strings.NewReader(text)), queuedMetric)
	if err != nil || n != 16 {
		t.Fatalf("parseCounter = %d, %v; want 16, nil", n, err)
	}
	if _, err := parseCounter(bufio.NewScanner(strings.NewReader("apitosms_other 1\n")), queuedMetric); err == nil {
		t.Error("a missing counter was not an error")
	}
	if _, err := parseCounter(bufio.NewScanner(strings.NewReader(queuedMetric+" x\n")), queuedMetric); err == nil {
		t.Error("parseCounter accepted a malformed value")
	}
}

// Each delivery is a valid WooCommerce order JSON of its own id.
func TestWooOrder(t *testing.T) {
	t.Parallel()
	var o struct {
		ID      int64 `json:"id"`
		Status  string
		Billing struct{ Phone string }
		Items   []any `json:"line_items"`
	}
	if err := json.Unmarshal(wooOrder(1234567), &o); err != nil {
		t.Fatal(err)
	}
	if o.ID != 1234567 || o.Status != "processing" || o.Billing.Phone == "" || len(o.Items) != 2 {
		t.Fatalf("order %+v", o)
	}
}

// Errors name the route without the address or the token.
func TestRoute(t *testing.T) {
	t.Parallel()
	for url, want := range map[string]string{
		"http://127.0.0.1:1/admin/v1/accounts":     "/admin/v1/accounts",
		"http://127.0.0.1:1/api/secret-tok/stores": "/api/{token}/stores",
		"http://127.0.0.1:1/other":                 "http://127.0.0.1:1/other",
	} {
		if got := route(url); got != want {
			t.Errorf("route(%q) = %q, want %q", url, got, want)
		}
	}
}
