package apperr_test

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/testkit"
)

func TestWithCopies(t *testing.T) {
	base := apperr.New(402, "quota_exceeded", "Monthly limit reached")
	e := base.With("limit", 100).With("used", 100).WithHeader("Retry-After", "60")
	if base.Extra != nil || base.Headers != nil {
		t.Errorf("With changed the original: %+v", base)
	}
	if e.Extra["limit"] != 100 || e.Extra["used"] != 100 || e.Headers["Retry-After"] != "60" {
		t.Errorf("copy = %+v", e)
	}
	wrapped := fmt.Errorf("reserve: %w", e)
	if got, ok := apperr.As(wrapped); !ok || got != e {
		t.Errorf("As(wrapped) = %v, %v", got, ok)
	}
	if _, ok := apperr.As(errors.New("plain")); ok {
		t.Error("As(plain) = true")
	}
	if got, want := e.Error(), "402 quota_exceeded: Monthly limit reached"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestHandler(t *testing.T) {
	app := fiber.New(fiber.Config{ErrorHandler: apperr.Handler(testkit.Logger(t)), BodyLimit: 64, DisableStartupMessage: true})
	app.Get("/app", func(*fiber.Ctx) error {
		return fmt.Errorf("wrapped: %w", apperr.New(429, "rate_limited", "Too many requests").
			With("retryAfter", 7).WithHeader("Retry-After", "7"))
	})
	app.Get("/plain", func(*fiber.Ctx) error { return errors.New("secret connection string") })
	app.Get("/timeout", func(*fiber.Ctx) error { return fmt.Errorf("rpc: %w", context.DeadlineExceeded) })
	app.Get("/kv", func(*fiber.Ctx) error { return fmt.Errorf("rate limit write: %w", jetstream.ErrNoStreamResponse) })
	app.Get("/rpc503", func(*fiber.Ctx) error {
		return fmt.Errorf("claim: %w", apperr.New(503, "unavailable", "Service temporarily unavailable"))
	})
	app.Get("/fiber400", func(*fiber.Ctx) error { return fiber.NewError(400, "bad header") })
	app.Post("/body", func(c *fiber.Ctx) error { return c.SendStatus(204) })
	base := serve(t, app)

	cases := []struct {
		name, method, path, body string
		status                   int
		want                     map[string]any
		header                   [2]string
	}{
		{"app error", "GET", "/app", "", 429,
			map[string]any{"error": "Too many requests", "code": "rate_limited", "retryAfter": float64(7)},
			[2]string{"Retry-After", "7"}},
		{"plain error", "GET", "/plain", "", 500,
			map[string]any{"error": "Internal server error", "code": "internal"}, [2]string{}},
		{"deadline", "GET", "/timeout", "", 503,
			map[string]any{"error": "Service temporarily unavailable", "code": "unavailable"}, [2]string{"Retry-After", "1"}},
		{"broker gone", "GET", "/kv", "", 503,
			map[string]any{"error": "Service temporarily unavailable", "code": "unavailable"}, [2]string{"Retry-After", "1"}},
		{"503 from elsewhere", "GET", "/rpc503", "", 503,
			map[string]any{"error": "Service temporarily unavailable", "code": "unavailable"}, [2]string{"Retry-After", "1"}},
		{"fiber 4xx", "GET", "/fiber400", "", 400,
			map[string]any{"error": "bad header", "code": "bad_request"}, [2]string{}},
		{"no route", "GET", "/nowhere", "", 404,
			map[string]any{"error": "Not found", "code": "not_found"}, [2]string{}},
		{"wrong method", "PUT", "/body", "", 405,
			map[string]any{"error": "Method not allowed", "code": "method_not_allowed"}, [2]string{}},
		{"body too large", "POST", "/body", strings.Repeat("x", 1000), 413,
			map[string]any{"error": "Request body too large", "code": "body_too_large"}, [2]string{}},
		{"small body", "POST", "/body", "{}", 204, nil, [2]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := do(t, base, c.method, c.path, c.body)
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status {
				t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, c.status, raw)
			}
			if c.want == nil {
				return
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			var got map[string]any
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("body %s: %v", raw, err)
			}
			if len(got) != len(c.want) {
				t.Errorf("body = %v, want %v", got, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("body[%q] = %v, want %v", k, got[k], v)
				}
			}
			if c.header[0] != "" && resp.Header.Get(c.header[0]) != c.header[1] {
				t.Errorf("header %s = %q, want %q", c.header[0], resp.Header.Get(c.header[0]), c.header[1])
			}
			if strings.Contains(string(raw), "secret") {
				t.Errorf("internal error text leaked: %s", raw)
			}
		})
	}
}

// serve runs app on a real listener and returns its base URL: fiber's
// app.Test cannot observe a body rejected by fasthttp before routing (413).
func serve(t *testing.T, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	return "http://" + ln.Addr().String()
}

func do(t *testing.T, base, method, path, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestIsMatchesByStatusAndCode(t *testing.T) {
	copied := &apperr.Error{Status: 401, Code: "invalid_token", Message: "Invalid API token"}
	if !errors.Is(fmt.Errorf("wrapped: %w", copied), apperr.ErrInvalidToken) {
		t.Fatal("a decoded copy should match ErrInvalidToken")
	}
	if errors.Is(copied, apperr.ErrUnauthorized) {
		t.Fatal("different code matched")
	}
}

func TestUnavailable(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"bug", errors.New("nil map"), false},
		{"deadline", fmt.Errorf("kv get: %w", context.DeadlineExceeded), true},
		{"canceled by the client", context.Canceled, false},
		{"nats timeout", nats.ErrTimeout, true},
		{"no responders", fmt.Errorf("x: %w", nats.ErrNoResponders), true},
		{"no response from stream", fmt.Errorf("rate limit write: %w", jetstream.ErrNoStreamResponse), true},
		{"connection closed", nats.ErrConnectionClosed, true},
		{"reconnecting", nats.ErrConnectionReconnecting, true},
		{"cluster not available", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{"not leader", &jetstream.APIError{Code: 500, ErrorCode: 10009}, true},
		{"stream offline", &jetstream.APIError{Code: 500, ErrorCode: 10118}, true},
		{"wrong last sequence", &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}, false},
		{"stream not found", jetstream.ErrStreamNotFound, false},
		{"key exists", jetstream.ErrKeyExists, false},
		{"503 app error", fmt.Errorf("claim: %w", apperr.ErrUnavailable), true},
		{"429 app error", apperr.New(429, "rate_limited", "x"), false},
		{"postgres restarting", &pgconn.PgError{Code: "57P03"}, true},
		{"postgres connection lost", &pgconn.PgError{Code: "08006"}, true},
		{"postgres unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"bad conn", fmt.Errorf("query: %w", driver.ErrBadConn), true},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"sqlite busy", sqliteErr(5), true},
		{"sqlite constraint", sqliteErr(19), false},
	} {
		if got := apperr.Unavailable(c.err); got != c.want {
			t.Errorf("%s: Unavailable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

type sqliteErr int

func (e sqliteErr) Error() string { return fmt.Sprintf("sqlite error %d", int(e)) }
func (e sqliteErr) Code() int     { return int(e) }
