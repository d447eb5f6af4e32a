package client

import (
	"context"
	"errors"
	"go/parser"
	"go/token"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 26, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"Mon, 26 Jan 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Mon, 26 Jan 2026 11:00:00 GMT", 0, true}, // in the past: now
		{"", 0, false},
		{"-1", 0, false},
		{"soon", 0, false},
	}
	for _, c := range cases {
		got, ok := parseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestBackoffIsBoundedAndGrows(t *testing.T) {
	c, err := New("http://localhost:8080", testToken, WithBackoff(100*time.Millisecond, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 0; attempt < 40; attempt++ {
		ceil := min(100*time.Millisecond<<min(attempt, 20), 2*time.Second)
		for range 20 {
			if d := c.backoff(attempt); d < ceil/2 || d > ceil {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, ceil/2, ceil)
			}
		}
	}
}

func TestNewRefusesBadInputWithoutEchoingTheToken(t *testing.T) {
	for _, base := range []string{"", "localhost:8080", "ftp://x", "http://"} {
		if _, err := New(base, testToken); err == nil {
			t.Errorf("New(%q) accepted", base)
		}
	}
	bad := strings.ToUpper(testToken)
	_, err := New("http://localhost:8080", bad)
	if err == nil || strings.Contains(err.Error(), bad) {
		t.Fatalf("bad token: %v", err)
	}
}

// A transport error names the path template, never the URL with the token.
func TestTransportErrorsHideTheToken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c, err := New("http://"+addr, testToken, WithRetries(2), WithBackoff(time.Millisecond, 2*time.Millisecond),
		WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, qerr := c.Queue(ctx, []Message{{Phone: "+1234567890", Text: "x"}})
	_, gerr := c.GetMessages(ctx, 5)
	_, serr := c.Status(ctx, "d", []Report{{Hash: "0123456789abcdef", Status: StatusSent}})
	for _, err := range []error{qerr, gerr, serr} {
		if err == nil || strings.Contains(err.Error(), testToken) || !strings.Contains(err.Error(), "/api/{token}/") {
			t.Errorf("error %v", err)
		}
	}
}

func TestQueueRefusesBadKeyPrefix(t *testing.T) {
	c, _ := New("http://localhost:8080", testToken)
	for _, p := range []string{"bad\nprefix", strings.Repeat("k", 201), "é"} {
		if _, err := c.Queue(context.Background(), []Message{{Phone: "1", Text: "x"}}, WithIdempotencyKey(p)); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
}

func TestErrorIsMatchesByCode(t *testing.T) {
	e := &Error{StatusCode: 429, Code: CodeRateLimited, Message: "Rate limit exceeded", RetryAfter: time.Second}
	var err error = e
	if !strings.Contains(err.Error(), "429 rate_limited") {
		t.Errorf("Error() = %q", err.Error())
	}
	if !isErr(err, ErrRateLimited) || isErr(err, ErrLimitExceeded) || isErr(&Error{StatusCode: 502}, &Error{}) {
		t.Error("Is does not match by code")
	}
}

func isErr(err, target error) bool {
	var e *Error
	ok := errors.As(err, &e)
	return ok && e.Is(target)
}

// The package is for merchants' programs: the standard library only.
func TestStandardLibraryOnly(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}
