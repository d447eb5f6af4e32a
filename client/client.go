// Package client is a Go client of the apitosms HTTP API (docs/api.md,
// api/openapi.yaml) for merchants: queue SMS in any number, read what phones
// pulled and reported, and the app version. It depends only on the standard
// library.
//
// Every call retries what is safe to retry: 429 and 503 answers (honouring
// Retry-After), 502 and 504, and transport errors where repeating the request
// cannot do anything twice. Queue sends each batch with its own
// Idempotency-Key, the same on every retry of that batch, so a lost answer
// never queues a message twice.
//
// Errors from the server are *Error values carrying the contract's code; no
// error text ever contains the API token.
package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of a new Client.
const (
	DefaultMaxBatch    = 1000            // items per queue request (the server's default limit)
	DefaultRetries     = 5               // retries after the first attempt
	DefaultMaxWait     = 2 * time.Minute // longest single wait before a retry
	DefaultBaseBackoff = 500 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
	DefaultTimeout     = 60 * time.Second // per attempt, when no *http.Client is given
)

// maxResponseBytes bounds what is read of one answer (a get_messages answer
// of 200 messages of 1000 characters is under 1 MiB).
const maxResponseBytes = 32 << 20

// Client talks to one apitosms server with one API token. It is safe for
// concurrent use; FIFO order holds within one Queue call (and between calls
// made one after the other).
type Client struct {
	base        string
	token       string
	hc          *http.Client
	maxBatch    int
	retries     int
	maxWait     time.Duration
	baseBackoff time.Duration
	maxBackoff  time.Duration
	userAgent   string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (its Timeout bounds each attempt).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithMaxBatch sets how many messages (or status entries) go into one
// request; at least 1. The server refuses more than its
// APITOSMS_INGRESS_MAX_BATCH (1000 by default).
func WithMaxBatch(n int) Option { return func(c *Client) { c.maxBatch = max(n, 1) } }

// WithRetries sets how many times a failed attempt is retried (0: never).
func WithRetries(n int) Option { return func(c *Client) { c.retries = max(n, 0) } }

// WithMaxWait bounds one wait before a retry: when the server asks for a
// longer one (Retry-After), the call fails at once with its *Error instead.
func WithMaxWait(d time.Duration) Option { return func(c *Client) { c.maxWait = d } }

// WithBackoff sets the exponential back-off used when the server does not
// say how long to wait: base, doubling per retry, capped at max, with jitter.
func WithBackoff(base, max time.Duration) Option {
	return func(c *Client) { c.baseBackoff, c.maxBackoff = base, max }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client of the server at baseURL (e.g. https://sms.example.com)
// for the account whose API token is token.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("apitosms: base URL must be http(s)://host[:port][/prefix], got %q", baseURL)
	}
	if token == "" {
		return nil, errors.New("apitosms: no API token")
	}
	if !wellFormedToken(token) {
		// Never echo the token: it is a secret even when mistyped.
		return nil, fmt.Errorf("apitosms: an API token is 64 lower-case hex characters (got %d characters)", len(token))
	}
	c := &Client{
		base: u.String(), token: token,
		hc:       &http.Client{Timeout: DefaultTimeout},
		maxBatch: DefaultMaxBatch, retries: DefaultRetries, maxWait: DefaultMaxWait,
		baseBackoff: DefaultBaseBackoff, maxBackoff: DefaultMaxBackoff,
		userAgent: "apitosms-go-client/1",
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

func wellFormedToken(t string) bool {
	if len(t) != 64 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if (t[i] < '0' || t[i] > '9') && (t[i] < 'a' || t[i] > 'f') {
			return false
		}
	}
	return true
}

// request is one API call.
type request struct {
	method string
	path   string // full path; may contain the token (never shown: see shown)
	shown  string // the path as errors show it
	query  url.Values
	body   []byte
	// idemKey is sent as Idempotency-Key (queue only).
	idemKey string
	// okStatus reports the statuses whose body is decoded into out.
	okStatus func(int) bool
	// retryTransport: a transport error may be retried (the request cannot
	// do anything twice).
	retryTransport bool
}

func (c *Client) tokenPath(endpoint string) (path, shown string) {
	return "/api/" + url.PathEscape(c.token) + "/" + endpoint, "/api/{token}/" + endpoint
}

// do sends r, retrying as the package comment says, and decodes a successful
// answer into out. It returns the final status.
func (c *Client) do(ctx context.Context, r request, out any) (int, error) {
	target := c.base + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	for attempt := 0; ; attempt++ {
		status, err := c.once(ctx, r, target, out)
		if err == nil {
			return status, nil
		}
		if ctx.Err() != nil {
			return status, fmt.Errorf("apitosms: %s %s: %w", r.method, r.shown, ctx.Err())
		}
		if attempt >= c.retries {
			return status, err
		}
		wait, ok := c.retryWait(r, err, attempt)
		if !ok {
			return status, err
		}
		if dl, has := ctx.Deadline(); has && time.Until(dl) < wait {
			return status, err // would outlive the caller's deadline
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return status, fmt.Errorf("apitosms: %s %s: %w (while waiting to retry after: %w)", r.method, r.shown, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// retryWait decides whether err is worth another attempt and after how long.
func (c *Client) retryWait(r request, err error, attempt int) (time.Duration, bool) {
	var e *Error
	if !errors.As(err, &e) {
		if !r.retryTransport {
			return 0, false
		}
		return c.backoff(attempt), true
	}
	switch {
	case e.StatusCode == http.StatusTooManyRequests, e.StatusCode == http.StatusServiceUnavailable,
		e.StatusCode == http.StatusBadGateway, e.StatusCode == http.StatusGatewayTimeout,
		e.StatusCode == http.StatusConflict && e.Code == CodeIdempotencyInProgress && r.idemKey != "":
	default:
		return 0, false
	}
	wait := e.RetryAfter
	if wait <= 0 {
		wait = c.backoff(attempt)
	}
	if wait > c.maxWait {
		return 0, false
	}
	return wait, true
}

// backoff is base·2^attempt capped at max, the upper half jittered.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.baseBackoff
	for i := 0; i < attempt && d < c.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.maxBackoff)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1) //nolint:gosec // G404: jitter, not a secret
}

func (c *Client) once(ctx context.Context, r request, target string, out any) (int, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return 0, fmt.Errorf("apitosms: %s %s: %w", r.method, r.shown, redact(err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.idemKey != "" {
		req.Header.Set("Idempotency-Key", r.idemKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("apitosms: %s %s: %w", r.method, r.shown, redact(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("apitosms: %s %s: reading the answer: %w", r.method, r.shown, redact(err))
	}
	if r.okStatus(resp.StatusCode) {
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				return resp.StatusCode, fmt.Errorf("apitosms: %s %s: undecodable %d answer: %w", r.method, r.shown, resp.StatusCode, err)
			}
		}
		return resp.StatusCode, nil
	}
	return resp.StatusCode, parseError(resp, data)
}

// redact strips the URL (which holds the token) from a transport error.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func okOnly(s int) bool { return s == http.StatusOK }

// Message is one SMS to queue.
type Message struct {
	Phone string `json:"phone"`
	Text  string `json:"message"`
}

// QueuedItem is a queued message: Index is its position in the slice given to
// Queue, Phone the normalized number, Hash its id for GetMessages and Status.
type QueuedItem struct {
	Index int    `json:"index"`
	Hash  string `json:"hash"`
	Phone string `json:"phone"`
}

// ItemError is a refused message (or status entry): Index is its position in
// the slice given, Error the server's reason ("Invalid phone format", ...).
type ItemError struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// QueueResult is what Queue did. Items and Errors are in index order.
type QueueResult struct {
	Queued int
	Items  []QueuedItem
	Errors []ItemError
	// Unsent counts the messages at the end of the slice that were never
	// accepted because a request failed for good (Queue's error says why).
	Unsent int
	// Requests is how many batches the server answered (replays included).
	Requests int
}

// Failed is the number of refused messages (not counting Unsent ones).
func (r *QueueResult) Failed() int { return len(r.Errors) }

type queueOptions struct {
	keyPrefix string
	progress  func(done, total int)
}

// QueueOption configures one Queue call.
type QueueOption func(*queueOptions)

// WithIdempotencyKey makes the batches' Idempotency-Keys prefix+"/"+n (n the
// batch number, from 0) instead of random ones, so that a Queue call repeated
// after a crash with the same prefix and the same messages (within 24 hours)
// queues nothing twice: batches already accepted are answered again. prefix:
// printable ASCII, at most 200 characters.
func WithIdempotencyKey(prefix string) QueueOption {
	return func(o *queueOptions) { o.keyPrefix = prefix }
}

// WithProgress calls f after each batch with the messages handled so far.
func WithProgress(f func(done, total int)) QueueOption {
	return func(o *queueOptions) { o.progress = f }
}

type queueResponse struct {
	OK     bool         `json:"ok"`
	Queued int          `json:"queued"`
	Failed int          `json:"failed"`
	Items  []QueuedItem `json:"items"`
	Errors []ItemError  `json:"errors"`
}

// Queue queues msgs in requests of at most the batch size, one after the
// other, so the phones receive them in slice order. A message the server
// refuses is listed in Errors; the others are still queued. When a request
// fails for good (no subscription, monthly limit reached, retries used up,
// ctx done), Queue returns what was queued before it together with the error
// (*Error for an answer of the server), and Unsent counts the rest. Nothing
// to queue is not an error.
func (c *Client) Queue(ctx context.Context, msgs []Message, opts ...QueueOption) (*QueueResult, error) {
	var o queueOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.keyPrefix == "" {
		var b [16]byte
		_, _ = crand.Read(b[:])
		o.keyPrefix = hex.EncodeToString(b[:])
	} else if len(o.keyPrefix) > 200 || !printable(o.keyPrefix) {
		return nil, errors.New("apitosms: an idempotency key prefix is 1-200 printable ASCII characters")
	}
	res := &QueueResult{Items: []QueuedItem{}, Errors: []ItemError{}}
	path, shown := c.tokenPath("queue")
	for n, start := 0, 0; start < len(msgs); n, start = n+1, start+c.maxBatch {
		end := min(start+c.maxBatch, len(msgs))
		body, err := json.Marshal(msgs[start:end])
		if err != nil {
			res.Unsent = len(msgs) - start
			return res, fmt.Errorf("apitosms: encode messages: %w", err)
		}
		var qr queueResponse
		_, err = c.do(ctx, request{
			method: http.MethodPost, path: path, shown: shown, body: body,
			idemKey:        o.keyPrefix + "/" + strconv.Itoa(n),
			okStatus:       func(s int) bool { return s == http.StatusOK || s == http.StatusUnprocessableEntity },
			retryTransport: true, // the Idempotency-Key makes a repeat harmless
		}, &qr)
		if err != nil {
			res.Unsent = len(msgs) - start
			return res, err
		}
		res.Requests++
		res.Queued += len(qr.Items)
		for _, it := range qr.Items {
			it.Index += start
			res.Items = append(res.Items, it)
		}
		for _, e := range qr.Errors {
			e.Index += start
			res.Errors = append(res.Errors, e)
		}
		if o.progress != nil {
			o.progress(end, len(msgs))
		}
	}
	return res, nil
}

func printable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// PulledMessage is a message handed out by GetMessages.
type PulledMessage struct {
	Phone string `json:"phone"`
	Text  string `json:"text"`
	Hash  string `json:"hash"`
}

// GetMessages pulls up to limit waiting messages (oldest first; limit <= 0:
// the server's default of 20, at most 200) as a phone does, marking them
// initiated: they are not handed out again, so report them with Status.
// A transport error is not retried: its lost answer may already have handed
// messages out.
func (c *Client) GetMessages(ctx context.Context, limit int) ([]PulledMessage, error) {
	path, shown := c.tokenPath("get_messages")
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []PulledMessage
	if _, err := c.do(ctx, request{method: http.MethodGet, path: path, shown: shown, query: q, okStatus: okOnly}, &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = []PulledMessage{}
	}
	return out, nil
}

// Outcomes a phone reports.
const (
	StatusSent   = 2
	StatusFailed = 3
)

// Report is one outcome: Status is StatusSent or StatusFailed.
type Report struct {
	Hash   string `json:"hash"`
	Status int    `json:"status"`
}

// StatusResult is what Status did: Updated counts the entries whose message
// now has the status asked for; Errors lists refused entries by index.
type StatusResult struct {
	Updated int
	Errors  []ItemError
}

type statusResponse struct {
	OK      bool        `json:"ok"`
	Updated int         `json:"updated"`
	Errors  []ItemError `json:"errors"`
}

// Status reports outcomes as a phone does, device naming the phone (cut to 15
// characters by the server; "" for none), in requests of at most the batch
// size. Reports are idempotent, so every failure is retried. On a failure
// for good it returns what the requests before it did, with the error.
func (c *Client) Status(ctx context.Context, device string, reports []Report) (*StatusResult, error) {
	res := &StatusResult{Errors: []ItemError{}}
	path, shown := c.tokenPath("status")
	for start := 0; start < len(reports); start += c.maxBatch {
		end := min(start+c.maxBatch, len(reports))
		body, err := json.Marshal(struct {
			Device   string   `json:"device,omitempty"`
			Messages []Report `json:"messages"`
		}{device, reports[start:end]})
		if err != nil {
			return res, fmt.Errorf("apitosms: encode reports: %w", err)
		}
		var sr statusResponse
		if _, err := c.do(ctx, request{method: http.MethodPost, path: path, shown: shown, body: body,
			okStatus: okOnly, retryTransport: true}, &sr); err != nil {
			return res, err
		}
		res.Updated += sr.Updated
		for _, e := range sr.Errors {
			e.Index += start
			res.Errors = append(res.Errors, e)
		}
	}
	return res, nil
}

// AppVersion is the active version of the phone app.
type AppVersion struct {
	Version      string    `json:"version"`
	VersionCode  int64     `json:"versionCode"`
	DownloadURL  string    `json:"downloadUrl"`
	ReleaseNotes string    `json:"releaseNotes"`
	FileSize     int64     `json:"fileSize"`
	PublishedAt  time.Time `json:"publishedAt"`
	SHA256       string    `json:"sha256"`
}

// AppVersion returns the active app version; none active is an *Error with
// code CodeNoActiveVersion.
func (c *Client) AppVersion(ctx context.Context) (*AppVersion, error) {
	var v AppVersion
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/api/app-version", shown: "/api/app-version",
		okStatus: okOnly, retryTransport: true}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}
