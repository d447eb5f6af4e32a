package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
)

const adminToken = "test-admin-token-0123456789"

// proc is one running apitosms process (run in this test binary).
type proc struct {
	base   string
	cancel context.CancelFunc
	done   chan error
}

// start runs apitosms with args on backend b. With allInOne on the embedded
// backend, the process starts its own embedded NATS server (no URL at all).
func start(t testing.TB, b testkit.Backend, env map[string]string, args ...string) *proc {
	t.Helper()
	e := map[string]string{"APITOSMS_ADMIN_TOKEN": adminToken}
	for k, v := range env {
		e[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		p.done <- Run(ctx, Runtime{Args: args, Getenv: b.Env(e), Stdout: io.Discard, Stderr: logWriter{t},
			OnReady: func(addr string) { ready <- addr }})
	}()
	select {
	case addr := <-ready:
		p.base = "http://" + addr
	case err := <-p.done:
		cancel()
		t.Fatalf("apitosms %v exited at start: %v", args, err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("apitosms %v did not start", args)
	}
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop shuts the process down as SIGTERM would and checks it exits cleanly.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("apitosms exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("apitosms did not stop")
	}
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(b []byte) (int, error) {
	defer func() { _ = recover() }()
	if bytes.Contains(b, []byte(`"level":"ERROR"`)) || bytes.Contains(b, []byte(`"level":"WARN"`)) {
		w.t.Log(string(bytes.TrimSpace(b)))
	}
	return len(b), nil
}

// response is a decoded HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

func (r response) list(t testing.TB) []map[string]any {
	t.Helper()
	var m []map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

var client = &http.Client{Timeout: 30 * time.Second}

func do(t testing.TB, method, url string, body any, headers ...string) response {
	t.Helper()
	r, err := send(method, url, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// send makes one request; body is a string, bytes, or a value sent as JSON.
func send(method, url string, body any, headers ...string) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

func admin(t testing.TB, method, url string, body any) response {
	t.Helper()
	return do(t, method, url, body, "Authorization", "Bearer "+adminToken)
}

// account creates an account with a subscription and returns its id and token.
func account(t testing.TB, base string, monthlyLimit, ratePerMinute int) (int64, string) {
	t.Helper()
	r := admin(t, "POST", base+"/admin/v1/accounts", map[string]any{"name": "Shop", "email": "shop@example.com"})
	if r.status != 201 {
		t.Fatalf("create account: %d %s", r.status, r.body)
	}
	m := r.json(t)
	id := int64(m["id"].(float64))
	tok := m["apiToken"].(string)
	sub := map[string]any{"plan": "test", "monthlyLimit": monthlyLimit, "rateLimitPerMinute": ratePerMinute}
	if r := admin(t, "PUT", fmt.Sprintf("%s/admin/v1/accounts/%d/subscription", base, id), sub); r.status != 200 {
		t.Fatalf("subscription: %d %s", r.status, r.body)
	}
	return id, tok
}

// items builds n queue items whose messages are prefix-0, prefix-1, ...
func items(prefix string, n int) []map[string]string {
	out := make([]map[string]string, n)
	for i := range out {
		out[i] = map[string]string{"phone": fmt.Sprintf("+1555%07d", i), "message": fmt.Sprintf("%s-%d", prefix, i)}
	}
	return out
}
