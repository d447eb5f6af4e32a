package billing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/billing"
)

const adminToken = "test-admin-token"

// replica is one running billing Service with its own broker connection,
// database handle and metrics registry.
type replica struct {
	svc *billing.Service
	nc  *nats.Conn
	reg *prometheus.Registry
	app *fiber.App
}

// startReplica runs a billing Service on b until the test ends, and checks
// that it then stops cleanly.
func startReplica(t *testing.T, b testkit.Backend) *replica {
	t.Helper()
	br := b.Broker(t)
	reg := prometheus.NewRegistry()
	log := testkit.Logger(t)
	cfg := billing.DefaultConfig()
	cfg.AdminToken = adminToken
	cfg.ShutdownTimeout = 5 * time.Second
	svc, err := billing.New(context.Background(), cfg, billing.Deps{
		Broker: br, DB: b.DB(t, "billing"), Names: b.Names, Registerer: reg, Log: log,
	})
	if err != nil {
		t.Fatalf("billing.New: %v", err)
	}
	testkit.Run(t, svc.Run)
	if err := svc.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	app := fiber.New(fiber.Config{ErrorHandler: apperr.Handler(log)})
	svc.Routes(app)
	r := &replica{svc: svc, nc: br.Conn, reg: reg, app: app}
	waitForResponders(t, r, b.Names)
	return r
}

// waitForResponders waits until the RPC subscriptions are live.
func waitForResponders(t *testing.T, r *replica, n events.Names) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, "billing answering", func() bool {
		_, err := rpc.Call[events.AuthRequest, events.AuthReply](context.Background(), r.nc, n.BillingAuth(),
			events.AuthRequest{TokenDigest: "x"})
		e, ok := apperr.As(err)
		return ok && e.Code == "invalid_token"
	})
}

// do sends an operator request; bearer "" sends no Authorization header.
func (r *replica) do(t *testing.T, method, path, bearer string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(v)
	default:
		raw, _ := json.Marshal(v)
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := r.app.Test(req, 10000)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: body %q is not a JSON object", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

// admin sends an authorized operator request and requires status want.
func (r *replica) admin(t *testing.T, method, path string, body any, want int) map[string]any {
	t.Helper()
	status, out := r.do(t, method, path, adminToken, body)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d (body %v)", method, path, status, want, out)
	}
	return out
}

// account is a created account: its id and token.
type account struct {
	ID    int64
	Token string
	path  string
}

func (r *replica) createAccount(t *testing.T) account {
	t.Helper()
	out := r.admin(t, "POST", "/admin/v1/accounts", map[string]any{"name": "Shop", "email": "shop@example.com"}, 201)
	id := int64(out["id"].(float64))
	return account{ID: id, Token: out["apiToken"].(string), path: "/admin/v1/accounts/" + itoa(id)}
}

func (r *replica) subscribe(t *testing.T, a account, body map[string]any) map[string]any {
	t.Helper()
	return r.admin(t, "PUT", a.path+"/subscription", body, 200)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func call[Req, Resp any](t *testing.T, nc *nats.Conn, subject string, req Req) (Resp, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return rpc.Call[Req, Resp](ctx, nc, subject, req)
}

// wantCode requires err to be an apperr with code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok || e.Code != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}
