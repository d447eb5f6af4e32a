package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/apitosms/apitosms/internal/phonesim"
)

// stampWidth is the width of the enqueue time written into every message
// text: Unix nanoseconds, zero-padded (19 digits until the year 2286).
const stampWidth = 19

// textPrefix starts every bench message; the stamp follows it.
const textPrefix = "bench "

// batchBody is a precomputed queue request body. Each message text starts
// with "bench <unixnano>"; Stamp rewrites the timestamps in place, so a
// request costs no encoding.
type batchBody struct {
	buf   []byte
	slots []int // offsets of the timestamp digits
	n     int   // items
	x     extras
	// scheduled counts the items with a sendAt (never due in the run).
	scheduled int
}

// extras are the shares of items with §12 fields (Config.Scheduled, High).
type extras struct{ scheduled, high float64 }

// takes reports whether item i is among a share of the items, spread evenly.
func takes(share float64, i int) bool {
	return share > 0 && int(float64(i+1)*share) > int(float64(i)*share)
}

// newBatchBody builds a body of n items for merchant m. One item is sent as
// a bare object (the form of one-message clients), more as an array.
func newBatchBody(m, n int, ex ...extras) *batchBody {
	var x extras
	if len(ex) > 0 {
		x = ex[0]
	}
	sendAt := time.Now().Add(29 * 24 * time.Hour).UTC().Format(time.RFC3339)
	b := &batchBody{n: n, slots: make([]int, 0, n), x: x}
	if n > 1 {
		b.buf = append(b.buf, '[')
	}
	for i := 0; i < n; i++ {
		if i > 0 {
			b.buf = append(b.buf, ',')
		}
		b.buf = append(b.buf, `{"phone":"+1555`...)
		b.buf = appendPadded(b.buf, int64((m*100_003+i)%10_000_000), 7)
		b.buf = append(b.buf, `","message":"`+textPrefix...)
		b.slots = append(b.slots, len(b.buf))
		b.buf = append(b.buf, "0000000000000000000"...)
		b.buf = append(b.buf, " m"...)
		b.buf = strconv.AppendInt(b.buf, int64(m), 10)
		b.buf = append(b.buf, '-')
		b.buf = strconv.AppendInt(b.buf, int64(i), 10)
		b.buf = append(b.buf, ` Your order has shipped and will arrive tomorrow. Track it: https://ex.am/t/`...)
		b.buf = appendPadded(b.buf, int64(i), 6)
		b.buf = append(b.buf, '"')
		if takes(x.scheduled, i) {
			b.scheduled++
			b.buf = append(b.buf, `,"sendAt":"`+sendAt+`"`...)
		}
		if takes(x.high, i) {
			b.buf = append(b.buf, `,"priority":"high"`...)
		}
		b.buf = append(b.buf, '}')
	}
	if n > 1 {
		b.buf = append(b.buf, ']')
	}
	return b
}

// Stamp writes t into every item's text.
func (b *batchBody) Stamp(t time.Time) {
	var digits [stampWidth]byte
	appendPadded(digits[:0], t.UnixNano(), stampWidth)
	for _, off := range b.slots {
		copy(b.buf[off:off+stampWidth], digits[:])
	}
}

// appendPadded appends v (>= 0) in decimal, zero-padded to width digits.
func appendPadded(dst []byte, v int64, width int) []byte {
	var tmp [20]byte
	s := strconv.AppendInt(tmp[:0], v, 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// stampOf reads the enqueue time from a bench message text.
func stampOf(text string) (time.Time, bool) {
	if len(text) < len(textPrefix)+stampWidth || text[:len(textPrefix)] != textPrefix {
		return time.Time{}, false
	}
	ns, err := strconv.ParseInt(text[len(textPrefix):len(textPrefix)+stampWidth], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// merchant is one client queueing batches for its own account. Its fields
// belong to its goroutine until the run has ended.
type merchant struct {
	id       int
	client   *http.Client
	url      string
	full     *batchBody
	resp     bytes.Buffer
	latency  Histogram
	requests int64
	accepted int64
	errs     errorCounts
	verify   bool
	hashes   []string // accepted hashes, with verify
	extras   extras
	// scheduled counts the accepted messages with a sendAt (they wait, not
	// due, for the whole run); waiting holds their hashes, with verify.
	scheduled int64
	waiting   map[string]bool
}

func newMerchant(id int, c *http.Client, baseURL, token string, batch int, verify bool, ex extras) *merchant {
	return &merchant{id: id, client: c, url: baseURL + "/api/" + token + "/queue",
		full: newBatchBody(id, batch, ex), errs: errorCounts{}, verify: verify, extras: ex}
}

// run queues batches until stop is closed, ctx ends or quota messages
// (0: unlimited) were accepted. A request in flight when stop closes is
// finished, so every accepted message is counted.
func (m *merchant) run(ctx context.Context, stop <-chan struct{}, quota int64) {
	for ctx.Err() == nil {
		select {
		case <-stop:
			return
		default:
		}
		body := m.full
		if quota > 0 {
			left := quota - m.accepted
			if left <= 0 {
				return
			}
			if left < int64(body.n) {
				body = newBatchBody(m.id, int(left), m.extras)
			}
		}
		if wait := m.send(ctx, body); wait > 0 {
			select {
			case <-time.After(wait):
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}
}

// send makes one queue request and returns how long to back off.
func (m *merchant) send(ctx context.Context, body *batchBody) time.Duration {
	start := time.Now()
	body.Stamp(start)
	rd := phonesim.NewTrackedBody(body.buf)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.url, rd)
	if err != nil {
		m.errs.add("queue", 0)
		return time.Second
	}
	req.ContentLength = int64(len(body.buf))
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.client.Do(req)
	m.requests++
	if err != nil {
		rd.Wait()
		m.errs.add("queue", 0)
		return 100 * time.Millisecond
	}
	m.resp.Reset()
	_, err = m.resp.ReadFrom(resp.Body)
	resp.Body.Close()
	rd.Wait()
	elapsed := time.Since(start)
	if err != nil {
		m.errs.add("queue", 0)
		return 100 * time.Millisecond
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusUnprocessableEntity:
		m.latency.Record(elapsed)
		q, failed := m.parse(body)
		m.accepted += int64(q)
		if failed > 0 {
			m.errs.addN("queue item", failed)
		}
		if resp.StatusCode != http.StatusOK {
			m.errs.add("queue", resp.StatusCode)
		}
		return 0
	case http.StatusTooManyRequests:
		m.errs.add("queue", resp.StatusCode)
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			return time.Duration(s) * time.Second
		}
		return time.Second
	default:
		m.errs.add("queue", resp.StatusCode)
		return 100 * time.Millisecond
	}
}

// parse reads "queued" and "failed" from the response of body (and the
// hashes, with verify) without decoding the item list in the common case,
// and counts the accepted items that were scheduled.
func (m *merchant) parse(body *batchBody) (queued, failed int) {
	b := m.resp.Bytes()
	if m.verify || (body.scheduled > 0 && intField(b, `"failed":`) > 0) {
		// Which items were accepted matters: decode the list.
		var r struct {
			Queued int `json:"queued"`
			Failed int `json:"failed"`
			Items  []struct {
				Index int    `json:"index"`
				Hash  string `json:"hash"`
			} `json:"items"`
		}
		if json.Unmarshal(b, &r) != nil {
			return 0, 0
		}
		for _, it := range r.Items {
			sched := takes(body.x.scheduled, it.Index)
			if sched {
				m.scheduled++
			}
			if !m.verify {
				continue
			}
			m.hashes = append(m.hashes, it.Hash)
			if sched {
				if m.waiting == nil {
					m.waiting = map[string]bool{}
				}
				m.waiting[it.Hash] = true
			}
		}
		return r.Queued, r.Failed
	}
	queued, failed = intField(b, `"queued":`), intField(b, `"failed":`)
	if failed == 0 && queued == body.n {
		m.scheduled += int64(body.scheduled)
	}
	return queued, failed
}

// intField returns the integer after the first occurrence of key in b (0 if
// absent). The queue response puts "queued" and "failed" before the items.
func intField(b []byte, key string) int {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0
	}
	n := 0
	for _, c := range b[i+len(key):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}
