package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// BenchmarkStoreHooks measures issue 13's two speeds through the real HTTP
// server (all in one process on the embedded NATS server and SQLite), with
// signed WooCommerce order.created deliveries of the testdata order, each
// a new order:
//
//   - deliveries/s: verified and durably stored (answered 200) by
//     POST /hooks/woocommerce/{id}, eight shops' connections at once;
//   - orders/s: from the first POST until the last order is queued as an
//     SMS (billing reserve + accepted stream): end to end, bounded by the
//     receiving rate when the consumer keeps up;
//   - backlog-orders/s: as many deliveries again stored straight into the
//     stream at once, until the last is queued: the consumer's own pace.
//
// and the process's CPU (user + system, getrusage) per order, which on a
// busy machine says more than the rates: cpu-µs/order from the first POST
// to the last order queued (senders, receiving endpoint, NATS server and
// consumer: everything runs in this process), cpu-µs/backlog-order for the
// backlog (the consumer, and the stream writes of the backlog).
//
// Issue targets: 3,000 deliveries/s and 2,000 orders/s.
func BenchmarkStoreHooks(b *testing.B) {
	be := testkit.Embedded(b)
	p := start(b, be, map[string]string{"APITOSMS_LOG_LEVEL": "error"})
	base := p.base
	_, tok := account(b, base, 100000000, 100000)
	const secret = "bench-secret-0123456789"
	r, err := send("POST", base+"/api/"+tok+"/stores", map[string]any{"platform": "woocommerce", "name": "Loja", "secret": secret, "defaultCountry": "BR"})
	if err != nil || r.status != 201 {
		b.Fatalf("store: %v %d %s", err, r.status, r.body)
	}
	var st struct{ ID string }
	_ = json.Unmarshal(r.body, &st)
	hook := base + "/hooks/woocommerce/" + st.ID
	order, err := os.ReadFile(storesTestdata + "woocommerce_order.json")
	if err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	seq.Store(queuedSMS(b, base))
	start := seq.Load()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	const clients = 32
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	t0, c0 := time.Now(), cpuTime()
	for range clients {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				// Every delivery and order id distinct (each run has its own
				// server): an id seen twice is rightly not queued twice, and
				// the wait below would run out.
				n := strconv.FormatInt(10_000_000+i, 10)
				body := bytes.Replace(order, []byte(`"id": 727,`), []byte(`"id": `+n+`,`), 1)
				req, _ := http.NewRequest("POST", hook, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-WC-Webhook-Signature", shopSign(secret, string(body)))
				req.Header.Set("X-WC-Webhook-Topic", "order.created")
				req.Header.Set("X-WC-Webhook-Delivery-ID", n)
				resp, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("hook: %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	received := time.Since(t0)
	// The queued count is a metric of the server: poll it (nothing else
	// says when the last order is queued).
	testkit.EventuallyEvery(b, 5*time.Minute, 5*time.Millisecond, fmt.Sprintf("%d orders queued", b.N), func() bool {
		return queuedSMS(b, base)-start >= int64(b.N)
	})
	queued, c1 := time.Since(t0), cpuTime()

	// A backlog: b.N more deliveries stored at once straight into the
	// stream (as after an outage), timed until the last is queued. Here the
	// consumer alone sets the pace.
	// Stored 100 to a message, as the receiving endpoint's group commit
	// does under load.
	br := be.Broker(b)
	t1 := time.Now()
	var group []events.StoreHook
	for i := range b.N {
		n := fmt.Sprintf("backlog-%d", i)
		body := bytes.Replace(order, []byte(`"id": 727,`), []byte(`"id": `+strconv.Itoa(20_000_000+i)+`,`), 1)
		group = append(group, events.StoreHook{StoreID: st.ID, Platform: "woocommerce", Topic: "order.created",
			DeliveryID: n, ReceivedAt: time.Now(), Body: body})
		if len(group) == 100 || i == b.N-1 {
			msg, err := be.Names.StoreHookBatchMsg(n, group)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := br.JS.PublishMsg(context.Background(), msg); err != nil {
				b.Fatal(err)
			}
			group = group[:0]
		}
	}
	testkit.EventuallyEvery(b, 10*time.Minute, 5*time.Millisecond, fmt.Sprintf("a backlog of %d orders queued", b.N), func() bool {
		return queuedSMS(b, base)-start >= int64(2*b.N)
	})
	drained, c2 := time.Since(t1), cpuTime()
	b.StopTimer()
	b.ReportMetric(float64((c1-c0).Microseconds())/float64(b.N), "cpu-µs/order")
	b.ReportMetric(float64((c2-c1).Microseconds())/float64(b.N), "cpu-µs/backlog-order")
	b.ReportMetric(float64(b.N)/received.Seconds(), "deliveries/s")
	b.ReportMetric(float64(b.N)/queued.Seconds(), "orders/s")
	b.ReportMetric(float64(b.N)/drained.Seconds(), "backlog-orders/s")
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// queuedSMS reads apitosms_stores_queued_messages_total from /metrics.
func queuedSMS(b *testing.B, base string) int64 {
	b.Helper()
	r, err := send("GET", base+"/metrics", nil)
	if err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "apitosms_stores_queued_messages_total "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int64(f)
		}
	}
	return 0
}
