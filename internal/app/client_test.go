package app

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apiclient "github.com/apitosms/apitosms/client"
	"github.com/apitosms/apitosms/libs/testkit"
)

// recorder is an http.RoundTripper that passes every request to the real
// server and records it. With lose > 0 it throws that many answers away after
// the server gave them, as a connection broken at the wrong moment would.
type recorder struct {
	mu    sync.Mutex
	calls []recordedCall
	lose  int
}

type recordedCall struct {
	sent, answered time.Time
	method, path   string
	key            string // Idempotency-Key
	items          int    // entries in a JSON array body (queue) or in "messages" (status)
	status         int
	header         http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	c := recordedCall{sent: time.Now(), method: req.Method, path: req.URL.Path, key: req.Header.Get("Idempotency-Key")}
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
		var list []json.RawMessage
		var report struct{ Messages []json.RawMessage }
		if json.Unmarshal(body, &list) == nil {
			c.items = len(list)
		} else if json.Unmarshal(body, &report) == nil {
			c.items = len(report.Messages)
		}
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	c.answered, c.status, c.header = time.Now(), resp.StatusCode, resp.Header.Clone()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
	if r.lose > 0 {
		r.lose--
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errors.New("connection reset (simulated: the answer was lost)")
	}
	return resp, nil
}

func (r *recorder) queueCalls() []recordedCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []recordedCall
	for _, c := range r.calls {
		if strings.HasSuffix(c.path, "/queue") {
			out = append(out, c)
		}
	}
	return out
}

func newClient(t *testing.T, base, tok string, rec *recorder, opts ...apiclient.Option) *apiclient.Client {
	t.Helper()
	if rec != nil {
		opts = append([]apiclient.Option{apiclient.WithHTTPClient(&http.Client{Transport: rec, Timeout: 60 * time.Second})}, opts...)
	}
	c, err := apiclient.New(base, tok, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func messages(prefix string, n int) []apiclient.Message {
	out := make([]apiclient.Message, n)
	for i := range out {
		out[i] = apiclient.Message{Phone: fmt.Sprintf("+1555%07d", i), Text: fmt.Sprintf("%s-%d", prefix, i)}
	}
	return out
}

// drain pulls every waiting message with the client, in hand-out order.
func drain(t *testing.T, c *apiclient.Client) []apiclient.PulledMessage {
	t.Helper()
	var all []apiclient.PulledMessage
	for {
		got, err := c.GetMessages(context.Background(), 200)
		if err != nil {
			t.Fatalf("get_messages: %v", err)
		}
		if len(got) == 0 {
			return all
		}
		all = append(all, got...)
	}
}

// 2,500 messages go out as 1000+1000+500, each request with its own key;
// indexes in the result are the caller's; phones get them in slice order;
// reports of all of them are split the same way.
func TestClientQueueBatchesFIFO(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, nil)
		_, tok := account(t, p.base, 10000, 1000)
		rec := &recorder{}
		c := newClient(t, p.base, tok, rec)
		msgs := messages("fifo", 2500)
		msgs[1234].Phone = "12"
		var progress []int
		res, err := c.Queue(context.Background(), msgs, apiclient.WithProgress(func(done, total int) {
			if total != 2500 {
				t.Errorf("progress total %d", total)
			}
			progress = append(progress, done)
		}))
		if err != nil {
			t.Fatal(err)
		}
		if res.Queued != 2499 || res.Unsent != 0 || res.Requests != 3 || len(res.Errors) != 1 ||
			res.Errors[0] != (apiclient.ItemError{Index: 1234, Error: "Invalid phone format"}) {
			t.Fatalf("result: queued %d unsent %d requests %d errors %v", res.Queued, res.Unsent, res.Requests, res.Errors)
		}
		if fmt.Sprint(progress) != "[1000 2000 2500]" {
			t.Fatalf("progress %v", progress)
		}
		calls := rec.queueCalls()
		if len(calls) != 3 || calls[0].items != 1000 || calls[1].items != 1000 || calls[2].items != 500 {
			t.Fatalf("requests: %+v", calls)
		}
		if calls[0].key == "" || calls[0].key == calls[1].key || calls[1].key == calls[2].key || calls[0].key == calls[2].key {
			t.Fatalf("idempotency keys %q %q %q", calls[0].key, calls[1].key, calls[2].key)
		}
		for i, it := range res.Items {
			want := i
			if i >= 1234 {
				want = i + 1
			}
			if it.Index != want || it.Phone != msgs[want].Phone || !hashRE.MatchString(it.Hash) {
				t.Fatalf("item %d: %+v", i, it)
			}
		}

		got := drain(t, c)
		if len(got) != 2499 {
			t.Fatalf("pulled %d", len(got))
		}
		reports := make([]apiclient.Report, len(got))
		for i, m := range got {
			it := res.Items[i]
			if m.Hash != it.Hash || m.Text != msgs[it.Index].Text {
				t.Fatalf("hand-out %d: %+v, queued %+v (%q)", i, m, it, msgs[it.Index].Text)
			}
			reports[i] = apiclient.Report{Hash: m.Hash, Status: apiclient.StatusSent}
		}
		sr, err := c.Status(context.Background(), "cli-test", reports)
		if err != nil || sr.Updated != 2499 || len(sr.Errors) != 0 {
			t.Fatalf("status: %+v %v", sr, err)
		}
	})
}

// The answer to the first attempt is lost after the server queued the
// batch: the retry carries the same key, gets the stored answer, and
// nothing is queued twice.
func TestClientIdempotentRetry(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, nil)
		id, tok := account(t, p.base, 100, 1000)
		rec := &recorder{lose: 1}
		c := newClient(t, p.base, tok, rec, apiclient.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
		res, err := c.Queue(context.Background(), messages("once", 3))
		if err != nil || res.Queued != 3 {
			t.Fatalf("queue: %+v %v", res, err)
		}
		calls := rec.queueCalls()
		if len(calls) != 2 || calls[0].status != 200 || calls[1].status != 200 || calls[0].key != calls[1].key ||
			calls[1].header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("attempts: %+v", calls)
		}
		if got := drain(t, c); len(got) != 3 || got[0].Hash != res.Items[0].Hash {
			t.Fatalf("queued twice? pulled %v", got)
		}
		acc := admin(t, "GET", fmt.Sprintf("%s/admin/v1/accounts/%d", p.base, id), nil).json(t)
		if acc["used"] != 3.0 {
			t.Fatalf("quota used %v", acc["used"])
		}
		// A stable key prefix makes a whole rerun idempotent: the same
		// messages sent again with it queue nothing new.
		again := newClient(t, p.base, tok, nil)
		for range 2 {
			r, err := again.Queue(context.Background(), messages("order-1001", 3), apiclient.WithIdempotencyKey("order-1001"))
			if err != nil || r.Queued != 3 {
				t.Fatalf("keyed queue: %+v %v", r, err)
			}
		}
		if got := drain(t, again); len(got) != 3 {
			t.Fatalf("keyed rerun queued %d", len(got))
		}
	})
}

// Failures come back as *client.Error with the contract's code, partial
// results say what was queued, and no error text holds the token.
func TestClientTypedErrors(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, nil)
		ctx := context.Background()
		check := func(what string, err error, target error, status int) *apiclient.Error {
			t.Helper()
			var e *apiclient.Error
			if !errors.As(err, &e) || !errors.Is(err, target) || e.StatusCode != status {
				t.Fatalf("%s: %v, want %v (%d)", what, err, target, status)
			}
			if strings.Contains(err.Error(), "/api/") && !strings.Contains(err.Error(), "{token}") {
				t.Fatalf("%s: %v shows a path with the token", what, err)
			}
			return e
		}

		unknown := strings.Repeat("ab", 32)
		c := newClient(t, p.base, unknown, nil)
		_, err := c.Queue(ctx, messages("x", 1))
		_ = check("unknown token", err, apiclient.ErrInvalidToken, 401)
		_, err = c.GetMessages(ctx, 1)
		_ = check("unknown token pull", err, apiclient.ErrInvalidToken, 401)
		if strings.Contains(err.Error(), unknown) {
			t.Fatalf("token in %v", err)
		}
		_, err = c.AppVersion(ctx)
		_ = check("no active version", err, apiclient.ErrNoActiveVersion, 404)

		r := admin(t, "POST", p.base+"/admin/v1/accounts", map[string]any{"name": "NoSub", "email": "n@example.com"})
		noSub := newClient(t, p.base, r.json(t)["apiToken"].(string), nil)
		res, err := noSub.Queue(ctx, messages("x", 5))
		_ = check("no subscription", err, apiclient.ErrSubscriptionRequired, 402)
		if res.Queued != 0 || res.Unsent != 5 {
			t.Fatalf("no subscription result %+v", res)
		}

		// Quota 1500: the first batch is queued, the second half, the third
		// refused with the month's numbers.
		_, tok := account(t, p.base, 1500, 1000)
		res, err = newClient(t, p.base, tok, nil).Queue(ctx, messages("quota", 2500))
		e := check("limit exceeded", err, apiclient.ErrLimitExceeded, 402)
		if e.Limit != 1500 || e.Used != 1500 || res.Queued != 1500 || res.Unsent != 500 || len(res.Errors) != 500 ||
			res.Errors[0] != (apiclient.ItemError{Index: 1500, Error: "SMS limit exceeded for this month"}) {
			t.Fatalf("limit: %+v, queued %d unsent %d errors %d", e, res.Queued, res.Unsent, len(res.Errors))
		}

		// Over the rate limit with a caller who will not wait that long: the
		// typed error at once, with the server's Retry-After.
		_, slow := account(t, p.base, 100, 1)
		sc := newClient(t, p.base, slow, nil, apiclient.WithMaxWait(time.Second))
		if _, err := sc.GetMessages(ctx, 1); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = sc.Queue(ctx, messages("slow", 1))
		e = check("rate limited", err, apiclient.ErrRateLimited, 429)
		if e.RetryAfter < 2*time.Second || time.Since(start) > 10*time.Second {
			t.Fatalf("rate limited: retry after %v, returned after %v", e.RetryAfter, time.Since(start))
		}
		// Nor past the caller's deadline.
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, err = newClient(t, p.base, slow, nil).GetMessages(dctx, 1)
		_ = check("deadline", err, apiclient.ErrRateLimited, 429)
	})
}

// A 429 is retried after exactly the Retry-After the server sent, and then
// succeeds. The window is a minute, so each backend takes about one.
func TestClientHonoursRetryAfter(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a one-minute rate-limit window")
	}
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		t.Parallel()
		p := allInOne(t, b, nil)
		_, tok := account(t, p.base, 100, 2)
		rec := &recorder{}
		c := newClient(t, p.base, tok, rec)
		for range 2 {
			if _, err := c.GetMessages(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
		}
		res, err := c.Queue(context.Background(), messages("patient", 2))
		if err != nil || res.Queued != 2 {
			t.Fatalf("queue after waiting: %+v %v", res, err)
		}
		calls := rec.queueCalls()
		if len(calls) != 2 || calls[0].status != 429 || calls[1].status != 200 || calls[0].key != calls[1].key {
			t.Fatalf("attempts: %+v", calls)
		}
		retryAfter, err := strconv.Atoi(calls[0].header.Get("Retry-After"))
		if err != nil || retryAfter < 1 {
			t.Fatalf("Retry-After %q", calls[0].header.Get("Retry-After"))
		}
		if waited := calls[1].sent.Sub(calls[0].answered); waited < time.Duration(retryAfter)*time.Second {
			t.Fatalf("retried after %v, Retry-After was %d s", waited, retryAfter)
		}
	})
}

// The merchant CLI end to end: send a CSV, pull like a phone, report.
func TestCLISendMessagesStatus(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, nil)
		_, tok := account(t, p.base, 100, 1000)
		dir := t.TempDir()
		env := map[string]string{"APITOSMS_URL": p.base, "APITOSMS_TOKEN": tok}
		cmd := func(args ...string) (string, string, error) {
			var out, errOut bytes.Buffer
			err := Run(context.Background(), Runtime{Args: args, Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errOut})
			return out.String(), errOut.String(), err
		}

		csvPath := filepath.Join(dir, "orders.csv")
		data := "\uFEFFphone,message\n+1 555 000 0001,first\n12,bad phone\n+15550000003,\"third, with a comma\"\n+15550000004\n+15550000005,fifth\n"
		if err := os.WriteFile(csvPath, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		results := filepath.Join(dir, "results.csv")
		out, _, err := cmd("send", "-csv", csvPath, "-o", results)
		if err == nil || !strings.Contains(err.Error(), "2 of 5 messages refused") {
			t.Fatalf("send: %v\n%s", err, out)
		}
		for _, want := range []string{"line 3 (12): Invalid phone format\n", "line 5 (+15550000004): Message is required\n",
			"queued 3 of 5 messages, 2 refused\n"} {
			if !strings.Contains(out, want) {
				t.Fatalf("send output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "\r") {
			t.Fatalf("progress bar drawn on a non-terminal:\n%q", out)
		}
		f, err := os.ReadFile(results)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(bytes.NewReader(f)).ReadAll()
		if err != nil || len(recs) != 6 {
			t.Fatalf("results: %v %q", err, f)
		}
		var hashes []string
		for _, r := range recs[1:] {
			if r[2] != "" {
				hashes = append(hashes, r[2])
			}
		}
		if fmt.Sprint(recs[1]) != fmt.Sprint([]string{"2", "+15550000001", hashes[0], ""}) ||
			fmt.Sprint(recs[2]) != fmt.Sprint([]string{"3", "12", "", "Invalid phone format"}) || len(hashes) != 3 {
			t.Fatalf("results: %q", recs)
		}

		out, _, err = cmd("messages", "-json", "-limit", "10")
		if err != nil {
			t.Fatal(err)
		}
		var pulled []apiclient.PulledMessage
		if err := json.Unmarshal([]byte(out), &pulled); err != nil || len(pulled) != 3 {
			t.Fatalf("messages: %v %s", err, out)
		}
		for i, want := range []string{"first", "third, with a comma", "fifth"} {
			if pulled[i].Text != want || pulled[i].Hash != hashes[i] {
				t.Fatalf("pulled %d: %+v, want %q %s", i, pulled[i], want, hashes[i])
			}
		}
		out, _, err = cmd("status", "-device", "cli", hashes[0], hashes[1]+":failed", "0000000000000000")
		if err == nil || !strings.Contains(out, "0000000000000000: Unknown hash\n") || !strings.Contains(out, "updated 2 of 3\n") {
			t.Fatalf("status: %v\n%s", err, out)
		}
		if out, errOut, err := cmd("messages"); err != nil || out != "" || errOut != "0 messages handed out\n" {
			t.Fatalf("messages when drained: %v %q %q", err, out, errOut)
		}

		// One message, with the progress bar forced on.
		out, _, err = cmd("send", "-phone", "+1 555 000 0009", "-text", "single")
		if err != nil || !strings.HasPrefix(out, "queued +15550000009: ") {
			t.Fatalf("single send: %v %q", err, out)
		}
		out, _, err = cmd("send", "-progress", "always", "-csv", csvPath)
		if !strings.Contains(out, "\r[") || !strings.Contains(out, "100% 5/5") || err == nil {
			t.Fatalf("progress: %v %q", err, out)
		}
		pending := out
		if out, _, err := cmd("messages"); err != nil || strings.Count(out, "\n") != 4 || !strings.Contains(out, "\t+15550000009\tsingle\n") {
			t.Fatalf("messages: %v %q (after %q)", err, out, pending)
		}

		delete(env, "APITOSMS_TOKEN")
		if _, _, err := cmd("messages"); err == nil || !strings.Contains(err.Error(), "APITOSMS_TOKEN") {
			t.Fatalf("no token: %v", err)
		}
	})
}
