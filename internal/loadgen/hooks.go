package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ModeLookup prefills, then merchants look their messages up in bulk
// (POST /api/{token}/messages/lookup, 1000 hashes a request) for the window.
const ModeLookup = "lookup"

// hookReceiver is a local webhook endpoint that answers 204 at once and
// counts the events it got (a batch POST carries many), from which the
// run's delivery rate is computed. It does not verify signatures: the
// server's tests do; the bench measures throughput.
type hookReceiver struct {
	srv    *http.Server
	ln     net.Listener
	url    string
	events atomic.Int64
	posts  atomic.Int64
	mu     sync.Mutex
	first  time.Time // first event received
	last   time.Time // last event received
}

var eventMarker = []byte(`{"id":"`)

func newHookReceiver() (*hookReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &hookReceiver{ln: ln, url: "http://" + ln.Addr().String() + "/hook"}
	bufs := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := bufs.Get().(*bytes.Buffer)
		b.Reset()
		_, _ = b.ReadFrom(r.Body)
		n := int64(1)
		if bytes.HasPrefix(b.Bytes(), []byte(`{"type":"batch"`)) {
			n = int64(bytes.Count(b.Bytes(), eventMarker))
		}
		bufs.Put(b)
		now := time.Now()
		h.mu.Lock()
		if h.first.IsZero() {
			h.first = now
		}
		h.last = now
		h.mu.Unlock()
		h.events.Add(n)
		h.posts.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = h.srv.Serve(ln) }()
	return h, nil
}

func (h *hookReceiver) close() { _ = h.srv.Close() }

func (h *hookReceiver) lastAt() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// registerHooks gives every token a "batch": true endpoint at h, for every
// message event but message.initiated (the default set).
func registerHooks(ctx context.Context, c *http.Client, baseURL string, tokens []string, h *hookReceiver) error {
	for _, tok := range tokens {
		body := map[string]any{"url": h.url, "batch": true, "description": "bench receiver"}
		if err := adminCall(ctx, c, http.MethodPost, baseURL+"/api/"+tok+"/webhooks", "", body, http.StatusCreated, nil); err != nil {
			return fmt.Errorf("create bench webhook (the server needs APITOSMS_WEBHOOK_ALLOW_PRIVATE=true): %w", err)
		}
	}
	return nil
}

// awaitHooks waits until h has received want events, or until timeout
// passes with none arriving, and fills res's webhook figures from start
// (the window's beginning).
func (r *run) awaitHooks(ctx context.Context, res *Result, start time.Time, inWindow int64, want int64) {
	h := r.hooks
	idle := time.Now()
	seen := h.events.Load()
	for h.events.Load() < want && ctx.Err() == nil && time.Since(idle) < r.cfg.HookWait {
		time.Sleep(50 * time.Millisecond)
		if n := h.events.Load(); n != seen {
			seen, idle = n, time.Now()
		}
	}
	got := h.events.Load()
	w := &Webhooks{Events: got, Expected: want, Posts: h.posts.Load(), InWindow: inWindow}
	if last := h.lastAt(); got > 0 && last.After(start) {
		w.Seconds = last.Sub(start).Seconds()
		w.PerSec = float64(got) / w.Seconds
	}
	if res.Seconds > 0 {
		w.InWindowPerSec = float64(inWindow) / res.Seconds
	}
	res.Webhooks = w
	if got < want {
		res.Errors["webhook events missing"] = want - got
		res.ErrorTotal += want - got
	}
}

// lookupWorker asks for its merchant's messages in bulk, 1000 hashes a
// request, round robin over the hashes the prefill got.
type lookupWorker struct {
	url     string
	client  *http.Client
	bodies  [][]byte
	latency Histogram
	lookups int64 // hashes answered (found or not) in 200 answers
	found   int64
	errs    errorCounts
}

func newLookupWorker(c *http.Client, baseURL, token string, hashes []string) *lookupWorker {
	w := &lookupWorker{url: baseURL + "/api/" + token + "/messages/lookup", client: c, errs: errorCounts{}}
	for i := 0; i < len(hashes); i += 1000 {
		chunk := hashes[i:min(i+1000, len(hashes))]
		b := []byte(`{"hashes":[`)
		for j, h := range chunk {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, h)
		}
		w.bodies = append(w.bodies, append(b, "]}"...))
	}
	return w
}

func (w *lookupWorker) run(ctx context.Context, stop <-chan struct{}) {
	var buf bytes.Buffer
	for i := 0; ctx.Err() == nil && len(w.bodies) > 0; i++ {
		select {
		case <-stop:
			return
		default:
		}
		body := w.bodies[i%len(w.bodies)]
		start := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
		if err != nil {
			w.errs.add("lookup", 0)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := w.client.Do(req)
		if err != nil {
			w.errs.add("lookup", 0)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			w.errs.add("lookup", resp.StatusCode)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		w.latency.Record(time.Since(start))
		n := int64(bytes.Count(body, []byte{','}) + 1)
		w.lookups += n
		w.found += int64(bytes.Count(buf.Bytes(), []byte(`"hash":`)))
	}
}

func (r *run) runLookups(ctx context.Context, stop <-chan struct{}) {
	var wg sync.WaitGroup
	for _, w := range r.lookups {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx, stop) }()
	}
	wg.Wait()
}
