package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// syncBuffer collects a process's log lines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startLogged runs an all-in-one process whose log is kept in the returned
// buffer (at debug level).
func startLogged(t *testing.T, b testkit.Backend) (*proc, *syncBuffer) {
	t.Helper()
	env := map[string]string{"APITOSMS_ADMIN_TOKEN": adminToken, "APITOSMS_LOG_LEVEL": "debug"}
	if !b.External {
		env["APITOSMS_NATS_URL"] = ""
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		p.done <- Run(ctx, Runtime{Getenv: b.Env(env), Stdout: logs, Stderr: logs,
			OnReady: func(addr string) { ready <- addr }})
	}()
	select {
	case addr := <-ready:
		p.base = "http://" + addr
	case err := <-p.done:
		cancel()
		t.Fatalf("exited at start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("did not start")
	}
	t.Cleanup(func() { p.stop(t) })
	return p, logs
}

// Every request gets an id (a sane incoming one is kept), one access log
// line with its route template and exact status, and a metric labelled the
// same way; a 405 is labelled with the route whose path matched. Tokens
// appear in neither the log nor the metrics.
func TestObservability(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p, logs := startLogged(t, b)
		_, tok := account(t, p.base, 1000, 1000)

		r := do(t, "GET", p.base+"/healthz", nil, HeaderRequestID, "lb-7f3a:42")
		if got := r.header.Get(HeaderRequestID); got != "lb-7f3a:42" {
			t.Fatalf("sane incoming request id not echoed: %q", got)
		}
		for _, bad := range []string{"has space", strings.Repeat("x", 129), "quote\"", "tok/" + tok} {
			r := do(t, "GET", p.base+"/healthz", nil, HeaderRequestID, bad)
			if got := r.header.Get(HeaderRequestID); !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(got) {
				t.Fatalf("request id for incoming %q = %q, want a fresh 16-hex id", bad, got)
			}
		}
		if got := do(t, "GET", p.base+"/healthz", nil).header.Get(HeaderRequestID); len(got) != 16 {
			t.Fatalf("no generated request id: %q", got)
		}

		if r := do(t, "POST", p.base+"/api/"+tok+"/queue", items("obs", 2), HeaderRequestID, "queue-req-1"); r.status != 200 {
			t.Fatalf("queue: %d %s", r.status, r.body)
		}
		if r := do(t, "PUT", p.base+"/api/"+tok+"/queue", "[]"); r.status != 405 {
			t.Fatalf("PUT queue: %d %s", r.status, r.body)
		}
		if r := do(t, "DELETE", p.base+"/healthz", nil); r.status != 405 {
			t.Fatalf("DELETE healthz: %d %s", r.status, r.body)
		}
		if r := do(t, "GET", p.base+"/no/such/"+tok, nil); r.status != 404 {
			t.Fatalf("unknown path: %d", r.status)
		}

		metrics := string(do(t, "GET", p.base+"/metrics", nil).body)
		ns := events.NewNames(b.Namespace)
		for _, want := range []string{
			`apitosms_http_requests_total{code="200",method="POST",route="/api/:token/queue"} 1`,
			`apitosms_http_requests_total{code="405",method="PUT",route="/api/:token/queue"} 1`,
			`apitosms_http_requests_total{code="405",method="DELETE",route="/healthz"} 1`,
			`apitosms_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
			`apitosms_build_info{commit=`,
			`apitosms_nats_connected 1`,
			`apitosms_ready 1`,
			`apitosms_nats_reconnects_total 0`,
			`go_sql_open_connections{db_name="queue"}`,
			`go_sql_open_connections{db_name="billing"}`,
			`apitosms_jetstream_up 1`,
			`apitosms_jetstream_stream_messages{stream="` + ns.AcceptedStream() + `"}`,
			`apitosms_jetstream_stream_bytes{stream="` + ns.AcceptedStream() + `"}`,
			`apitosms_jetstream_stream_replicas_current{stream="` + ns.AcceptedStream() + `"} 1`,
			`apitosms_http_requests_in_flight`,
			`apitosms_data_dir_free_bytes`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		if strings.Contains(metrics, tok) {
			t.Fatal("a token appears in /metrics")
		}
		checkMetricsWithPromtool(t, metrics)

		// Access log: one JSON line per request, route template, no token.
		var queueLine map[string]any
		lines := 0
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if bytes.Contains(line, []byte(tok)) {
				t.Fatalf("a token appears in the log: %s", line)
			}
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("log line is not JSON: %s", line)
			}
			if m["msg"] != "http request" {
				continue
			}
			lines++
			if m["request_id"] == "queue-req-1" {
				queueLine = m
			}
		}
		if queueLine == nil || queueLine["route"] != "/api/:token/queue" || queueLine["status"] != float64(200) ||
			queueLine["method"] != "POST" || queueLine["duration_ms"] == nil {
			t.Fatalf("access log line of the queue request: %v", queueLine)
		}
		// account(): 2 admin calls; then 1+4+1 healthz, queue, PUT, DELETE, 404, metrics.
		if lines < 12 {
			t.Fatalf("%d access log lines, want one per request (12)", lines)
		}
	})
}

// checkMetricsWithPromtool lints a real scrape with `promtool check
// metrics` (names, help, types, units); skipped when promtool is missing.
func checkMetricsWithPromtool(t *testing.T, scrape string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: skipping `promtool check metrics` (apt-get install prometheus; .ci/run installs it)")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestHealthCommand(t *testing.T) {
	b := testkit.Embedded(t)
	p := allInOne(t, b, nil)
	var out bytes.Buffer
	rt := Runtime{Args: []string{"health", "-url", p.base + "/readyz"}, Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out}
	if err := Run(context.Background(), rt); err != nil {
		t.Fatalf("health of a ready process: %v (%s)", err, out.String())
	}
	addr := strings.TrimPrefix(p.base, "http://")
	rt = Runtime{Args: []string{"health"}, Getenv: func(k string) string {
		if k == "APITOSMS_HTTP_ADDR" {
			return addr
		}
		return ""
	}, Stdout: &out, Stderr: &out}
	if err := Run(context.Background(), rt); err != nil {
		t.Fatalf("health on APITOSMS_HTTP_ADDR: %v", err)
	}
	rt.Args = []string{"health", "-url", "http://" + freeAddr(t) + "/readyz", "-timeout", "2s"}
	if err := Run(context.Background(), rt); err == nil {
		t.Fatal("health of nothing listening: want an error (exit 1)")
	}
	for addr, want := range map[string]string{":8080": "http://127.0.0.1:8080/readyz", "0.0.0.0:9": "http://127.0.0.1:9/readyz",
		"[::]:80": "http://[::1]:80/readyz", "10.0.0.5:81": "http://10.0.0.5:81/readyz"} {
		if got := readyzURL(addr); got != want {
			t.Errorf("readyzURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestMatchSegments(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		ok            bool
	}{
		{"/api/:token/queue", "/api/abc/queue", true},
		{"/api/:token/queue", "/api/abc/queue/x", false},
		{"/api/:token/queue", "/api//queue", false},
		{"/healthz", "/healthz", true},
		{"/download/*", "/download/a/b", true},
		{"/api/download/:code", "/api/download/", false},
	} {
		_, ok := matchSegments(strings.Split(strings.Trim(c.pattern, "/"), "/"), strings.Split(strings.Trim(c.path, "/"), "/"))
		if ok != c.ok {
			t.Errorf("%s ~ %s = %v, want %v", c.pattern, c.path, ok, c.ok)
		}
	}
}
