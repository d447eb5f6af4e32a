// Package phonesim simulates the Android phones of the contract: a phone
// polls get_messages, "sends" each SMS (a configurable delay and success
// rate), and reports every outcome in one status request per poll. The
// `apitosms phone` command and the load generator share this code.
package phonesim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Endpoint names, as passed to Hooks.OnRequest.
const (
	EndpointGet    = "get_messages"
	EndpointStatus = "status"
)

// Contract statuses a phone reports.
const (
	StatusSent   = 2
	StatusFailed = 3
)

// Config describes one simulated phone.
type Config struct {
	URL     string        // server base URL, e.g. http://127.0.0.1:8080
	Token   string        // the account's API token
	Limit   int           // get_messages limit; 0 means 100
	Success float64       // share of messages reported sent (2); the rest failed (3)
	Delay   time.Duration // simulated sending time per message
	Device  string        // device name sent with reports
	Client  *http.Client  // nil means NewClient()
	Seed    uint64        // seeds the success draw (0: random)
	Hooks   Hooks
}

// Hooks observe a phone without locks: they run on the phone's goroutine.
type Hooks struct {
	// OnRequest is called after every request: the endpoint, the HTTP status
	// (0 on a transport error) and the latency until the body was read.
	OnRequest func(endpoint string, code int, latency time.Duration, err error)
	// OnMessages is called with each non-empty batch a poll pulled, and the
	// moment its response arrived. The slice is only valid during the call.
	OnMessages func(msgs []Message, at time.Time)
}

// Message is one SMS handed to the phone.
type Message struct {
	Phone string `json:"phone"`
	Text  string `json:"text"`
	Hash  string `json:"hash"`
}

// Stats counts what a phone did. Reported counts messages carried by a
// status request the server answered 200; Updated is the sum of the
// server's "updated" figures, so Updated == Reported when every report took.
type Stats struct {
	Polls, EmptyPolls int64
	Pulled            int64
	Sent, Failed      int64 // reported as 2 and as 3
	Reported, Updated int64
	ReportErrors      int64         // entries the server listed in "errors"
	RequestErrors     int64         // requests not answered 200
	LastCode          int           // HTTP status of the last failed request
	RetryAfter        time.Duration // set by Poll: wait this long before the next poll
	LastError         error
}

// ErrUnauthorized is returned by Poll when the server rejects the token.
var ErrUnauthorized = errors.New("phonesim: invalid API token")

// Phone is one simulated device. It is not safe for concurrent use: run one
// goroutine per Phone (several Phones may share a token and a Client).
type Phone struct {
	cfg       Config
	client    *http.Client
	getURL    string
	statusURL string
	device    []byte // JSON-encoded device name
	rng       *rand.Rand
	resp      bytes.Buffer
	body      []byte
	msgs      []Message
	// lastRetryAfter is the Retry-After header of the last response.
	lastRetryAfter string
	Stats          Stats
}

// New returns a phone for cfg.
func New(cfg Config) *Phone {
	if cfg.Limit <= 0 {
		cfg.Limit = 100
	}
	if cfg.Client == nil {
		cfg.Client = NewClient(4)
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	base := strings.TrimRight(cfg.URL, "/") + "/api/" + cfg.Token
	dev, _ := jsonString(nil, cfg.Device)
	return &Phone{
		cfg:       cfg,
		client:    cfg.Client,
		getURL:    base + "/get_messages?limit=" + strconv.Itoa(cfg.Limit),
		statusURL: base + "/status",
		device:    dev,
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// NewClient returns an HTTP client tuned for many requests to one host:
// keep-alive connections for up to conns concurrent requests, no
// compression, generous buffers.
func NewClient(conns int) *http.Client {
	if conns < 16 {
		conns = 16
	}
	return &http.Client{
		Timeout: 2 * time.Minute,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        conns * 2,
			MaxIdleConnsPerHost: conns * 2,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			WriteBufferSize:     64 << 10,
			ReadBufferSize:      64 << 10,
		},
	}
}

// Poll runs one cycle: pull up to Limit messages, "send" them, and report
// every outcome in one status request, retrying the report until the
// server takes it or ctx ends (a pulled message is never left unreported
// while the phone runs). It returns the number of messages pulled; errors
// other than ctx's end and ErrUnauthorized are counted in Stats, not
// returned, and Stats.RetryAfter says how long to wait before the next poll.
func (p *Phone) Poll(ctx context.Context) (int, error) {
	p.Stats.RetryAfter = 0
	p.Stats.Polls++
	code, at, err := p.do(ctx, EndpointGet, http.MethodGet, p.getURL, nil)
	if err != nil || code != http.StatusOK {
		return 0, p.failed(ctx, code, err)
	}
	p.msgs, err = parseMessages(p.resp.Bytes(), p.msgs[:0])
	if err != nil {
		p.Stats.RequestErrors++
		p.Stats.LastError = err
		return 0, nil
	}
	n := len(p.msgs)
	if n == 0 {
		p.Stats.EmptyPolls++
		return 0, nil
	}
	p.Stats.Pulled += int64(n)
	if p.cfg.Hooks.OnMessages != nil {
		p.cfg.Hooks.OnMessages(p.msgs, at)
	}
	sent := p.send(ctx)
	p.buildReport(sent)
	for {
		code, _, err := p.do(ctx, EndpointStatus, http.MethodPost, p.statusURL, p.body)
		if err == nil && code == http.StatusOK {
			break
		}
		if ferr := p.failed(ctx, code, err); ferr != nil {
			return n, ferr
		}
		wait := p.Stats.RetryAfter
		if wait == 0 {
			wait = 100 * time.Millisecond
		}
		if !sleep(ctx, wait) {
			return n, ctx.Err()
		}
	}
	var r struct {
		Updated int          `json:"updated"`
		Errors  []indexError `json:"errors"`
	}
	if err := json.Unmarshal(p.resp.Bytes(), &r); err != nil {
		p.Stats.LastError = err
	}
	p.Stats.Reported += int64(n)
	p.Stats.Sent += int64(sent)
	p.Stats.Failed += int64(n - sent)
	p.Stats.Updated += int64(r.Updated)
	p.Stats.ReportErrors += int64(len(r.Errors))
	return n, nil
}

// send simulates sending p.msgs: each takes Delay and succeeds with
// probability Success. The first `sent` results (see buildReport) are 2.
func (p *Phone) send(ctx context.Context) int {
	if p.cfg.Delay > 0 {
		sleep(ctx, p.cfg.Delay*time.Duration(len(p.msgs)))
	}
	if p.cfg.Success >= 1 {
		return len(p.msgs)
	}
	sent := 0
	for i := range p.msgs {
		if p.rng.Float64() < p.cfg.Success {
			// Move the successes to the front; order of reports is free.
			p.msgs[i], p.msgs[sent] = p.msgs[sent], p.msgs[i]
			sent++
		}
	}
	return sent
}

// buildReport writes the status body: the first sent messages as 2, the
// rest as 3.
func (p *Phone) buildReport(sent int) {
	b := append(p.body[:0], `{"device":`...)
	b = append(b, p.device...)
	b = append(b, `,"messages":[`...)
	for i, m := range p.msgs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"hash":`...)
		b, _ = jsonString(b, m.Hash)
		if i < sent {
			b = append(b, `,"status":2}`...)
		} else {
			b = append(b, `,"status":3}`...)
		}
	}
	p.body = append(b, "]}"...)
}

// failed records a request that was not answered 200 and decides what the
// caller does: ErrUnauthorized and ctx errors stop the phone; 429 sets
// RetryAfter from the header.
func (p *Phone) failed(ctx context.Context, code int, err error) error {
	p.Stats.RequestErrors++
	p.Stats.LastCode = code
	p.Stats.LastError = err
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch code {
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusTooManyRequests:
		p.Stats.RetryAfter = time.Second
		if s, e := strconv.Atoi(p.lastRetryAfter); e == nil && s > 0 {
			p.Stats.RetryAfter = time.Duration(s) * time.Second
		}
	default:
		p.Stats.RetryAfter = 100 * time.Millisecond
	}
	return nil
}

// do sends one request and reads the whole response into p.resp. It returns
// the status code and when the response was read.
func (p *Phone) do(ctx context.Context, endpoint, method, url string, body []byte) (int, time.Time, error) {
	start := time.Now()
	code, err := p.roundTrip(ctx, method, url, body)
	at := time.Now()
	if p.cfg.Hooks.OnRequest != nil {
		p.cfg.Hooks.OnRequest(endpoint, code, at.Sub(start), err)
	}
	return code, at, err
}

func (p *Phone) roundTrip(ctx context.Context, method, url string, body []byte) (int, error) {
	var rd *TrackedBody
	var req *http.Request
	var err error
	if body != nil {
		rd = NewTrackedBody(body)
		req, err = http.NewRequestWithContext(ctx, method, url, rd)
		if err == nil {
			req.ContentLength = int64(len(body))
			req.Header.Set("Content-Type", "application/json")
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, method, url, nil)
	}
	if err != nil {
		return 0, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		rd.Wait()
		return 0, err
	}
	p.resp.Reset()
	_, err = p.resp.ReadFrom(resp.Body)
	resp.Body.Close()
	p.lastRetryAfter = resp.Header.Get("Retry-After")
	rd.Wait()
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// TrackedBody is a request body over a reusable buffer: Wait returns once
// the transport has closed it, after which the buffer may be rewritten
// (net/http may still be writing a body when the response arrives).
type TrackedBody struct {
	bytes.Reader
	once sync.Once
	done chan struct{}
}

// NewTrackedBody returns a body reading b.
func NewTrackedBody(b []byte) *TrackedBody {
	t := &TrackedBody{done: make(chan struct{})}
	t.Reset(b)
	return t
}

// Close marks the body finished; it is safe to call more than once.
func (t *TrackedBody) Close() error {
	t.once.Do(func() { close(t.done) })
	return nil
}

// Wait blocks until Close was called (at most 10 s: a transport that never
// closes the body would be a bug in net/http). A nil body returns at once.
func (t *TrackedBody) Wait() {
	if t == nil {
		return
	}
	select {
	case <-t.done: // the usual case: closed before the response was read
		return
	default:
	}
	select {
	case <-t.done:
	case <-time.After(10 * time.Second):
	}
}

var _ io.ReadCloser = (*TrackedBody)(nil)

// sleep waits d or until ctx ends; it reports whether the wait completed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// String summarises s for humans.
func (s Stats) String() string {
	return fmt.Sprintf("polls=%d empty=%d pulled=%d sent=%d failed=%d reported=%d updated=%d report_errors=%d request_errors=%d",
		s.Polls, s.EmptyPolls, s.Pulled, s.Sent, s.Failed, s.Reported, s.Updated, s.ReportErrors, s.RequestErrors)
}
