package releases_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/releases"
)

const adminToken = "test-admin-token"

// replica is one releases Service with its own broker connection, database
// handle and registry, served by a fiber app on a loopback listener.
type replica struct {
	t   *testing.T
	url string
	svc *releases.Service
	reg *prometheus.Registry
	hc  *http.Client
}

func testConfig() releases.Config {
	cfg := releases.DefaultConfig()
	cfg.AdminToken = adminToken
	cfg.PublicURL = "https://apitosms.example/"
	return cfg
}

// start runs a replica on backend b, configured as the app does.
func start(t *testing.T, b testkit.Backend, cfg releases.Config) *replica {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := testkit.Logger(t)
	reg := prometheus.NewRegistry()
	svc, err := releases.New(ctx, cfg, releases.Deps{
		Broker: b.Broker(t), DB: b.DB(t, "releases"), Names: b.Names, Registerer: reg, Log: log,
	})
	if err != nil {
		t.Fatalf("new releases: %v", err)
	}
	if err := svc.Ready(ctx); err != nil {
		t.Fatalf("ready: %v", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()

	app := fiber.New(fiber.Config{
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		BodyLimit:                    8 << 20,
		ErrorHandler:                 apperr.Handler(log),
		DisableStartupMessage:        true,
	})
	svc.Routes(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(func() {
		tr.CloseIdleConnections() // else the server waits for idle keep-alive connections
		_ = app.ShutdownWithTimeout(5 * time.Second)
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return &replica{t: t, url: "http://" + ln.Addr().String(), svc: svc, reg: reg, hc: &http.Client{Transport: tr}}
}

// apk returns n bytes starting with the ZIP signature, random after it.
func apk(n int, seed uint64) []byte {
	b := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = rng.Read(b)
	copy(b, "PK\x03\x04")
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// multipartBody encodes the upload fields (nil file: no file part).
func multipartBody(t *testing.T, fields map[string]string, file []byte) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, k := range []string{"version", "versionCode", "releaseNotes"} {
		if v, ok := fields[k]; ok {
			_ = w.WriteField(k, v)
		}
	}
	if file != nil {
		fw, _ := w.CreateFormFile("file", "app.apk")
		_, _ = fw.Write(file)
	}
	_ = w.Close()
	return &buf, w.FormDataContentType()
}

// upload publishes a version and returns the status and decoded body.
func (r *replica) upload(version string, code int64, notes string, file []byte) (int, map[string]any) {
	r.t.Helper()
	body, ct := multipartBody(r.t, map[string]string{
		"version": version, "versionCode": strconv.FormatInt(code, 10), "releaseNotes": notes,
	}, file)
	return r.do("POST", "/admin/v1/app-versions", body, map[string]string{"Content-Type": ct})
}

// mustUpload publishes a version or fails the test.
func (r *replica) mustUpload(version string, code int64, file []byte) {
	r.t.Helper()
	if st, body := r.upload(version, code, "notes "+version, file); st != http.StatusCreated {
		r.t.Fatalf("upload %d: %d %v", code, st, body)
	}
}

// do sends an admin-authenticated request (unless headers override
// Authorization) and decodes a JSON answer.
func (r *replica) do(method, path string, body io.Reader, headers map[string]string) (int, map[string]any) {
	r.t.Helper()
	resp, raw := r.raw(method, path, body, headers)
	var out map[string]any
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			r.t.Fatalf("%s %s: bad JSON %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, out
}

// raw sends a request and returns the response with its whole body.
func (r *replica) raw(method, path string, body io.Reader, headers map[string]string) (*http.Response, []byte) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.url+path, body)
	if err != nil {
		r.t.Fatal(err)
	}
	if strings.HasPrefix(path, "/admin/") {
		req.Header.Set("Authorization", "Bearer "+adminToken)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

// versions returns the operator's list, by version code.
func (r *replica) versions() map[int64]map[string]any {
	r.t.Helper()
	st, body := r.do("GET", "/admin/v1/app-versions", nil, nil)
	if st != http.StatusOK {
		r.t.Fatalf("list: %d %v", st, body)
	}
	out := map[int64]map[string]any{}
	for _, v := range body["versions"].([]any) {
		m := v.(map[string]any)
		out[int64(m["versionCode"].(float64))] = m
	}
	return out
}

// downloads returns the counter of a version.
func (r *replica) downloads(code int64) int64 {
	r.t.Helper()
	v, ok := r.versions()[code]
	if !ok {
		r.t.Fatalf("version %d not listed", code)
	}
	return int64(v["downloads"].(float64))
}

func (r *replica) metric(name string, labels ...string) float64 {
	r.t.Helper()
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	return testkit.Metric(r.t, r.reg, name, want)
}

// wantError checks a contract error answer.
func wantError(t *testing.T, what string, st int, body map[string]any, wantStatus int, code, msg string) {
	t.Helper()
	if st != wantStatus || body["code"] != code || (msg != "" && body["error"] != msg) {
		t.Errorf("%s: got %d %v, want %d code %q error %q", what, st, body, wantStatus, code, msg)
	}
}
