// Package testkit gives integration tests real infrastructure: an embedded
// NATS server and SQLite in a temporary directory, and, when
// APITOSMS_TEST_NATS_URL and APITOSMS_TEST_DATABASE_URL are set, the external
// NATS server and PostgreSQL too. Each test gets its own namespace (streams,
// subjects, buckets) and its own database, removed when the test ends.
package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/uptrace/bun"
	"go.uber.org/goleak"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/database"
	"github.com/apitosms/apitosms/libs/events"
)

// Environment variables naming the external servers.
const (
	EnvNATS     = "APITOSMS_TEST_NATS_URL"
	EnvDatabase = "APITOSMS_TEST_DATABASE_URL"
)

// Backend is one set of infrastructure a test runs against.
type Backend struct {
	Name        string // "embedded-sqlite" or "external-postgres"
	External    bool
	NATSURL     string // a URL every process of the test can connect to
	DatabaseURL string // "" means SQLite in DataDir
	DataDir     string
	Namespace   string
	Names       events.Names
}

// Each runs fn once per backend: always the embedded NATS server with SQLite,
// and the external NATS server with PostgreSQL when both URLs are set.
func Each(t *testing.T, fn func(t *testing.T, b Backend)) {
	t.Helper()
	t.Run("embedded-sqlite", func(t *testing.T) { fn(t, Embedded(t)) })
	natsURL, dbURL := os.Getenv(EnvNATS), os.Getenv(EnvDatabase)
	if natsURL != "" && dbURL != "" {
		t.Run("external-postgres", func(t *testing.T) { fn(t, External(t, natsURL, dbURL)) })
	} else if natsURL != "" || dbURL != "" {
		t.Fatalf("set both %s and %s, or neither", EnvNATS, EnvDatabase)
	}
}

// Embedded starts a NATS server in this process, listening on a free
// loopback port, with its store and the SQLite files in a temporary dir.
func Embedded(t testing.TB) Backend {
	t.Helper()
	dir := t.TempDir()
	b, err := broker.Open(context.Background(), broker.Config{
		DataDir: dir + "/shared-nats", Name: "testkit", Listen: true, ListenPort: -1,
	}, Logger(t))
	if err != nil {
		t.Fatalf("embedded nats: %v", err)
	}
	url := b.Conn.ConnectedUrl()
	t.Cleanup(b.Close)
	ns := Namespace()
	return Backend{Name: "embedded-sqlite", NATSURL: url, DataDir: dir, Namespace: ns, Names: events.NewNames(ns)}
}

// External uses the external servers, with a fresh namespace and a fresh
// PostgreSQL database, both removed at the end of the test.
func External(t testing.TB, natsURL, adminDatabaseURL string) Backend {
	t.Helper()
	ns := Namespace()
	dbURL := createDatabase(t, adminDatabaseURL, ns)
	b := Backend{Name: "external-postgres", External: true, NATSURL: natsURL, DatabaseURL: dbURL,
		DataDir: t.TempDir(), Namespace: ns, Names: events.NewNames(ns)}
	t.Cleanup(func() { cleanupNATS(t, natsURL, b.Names) })
	return b
}

// Namespace returns a fresh namespace.
func Namespace() string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return "t" + hex.EncodeToString(r[:])
}

// Broker connects to the backend's NATS server and ensures its streams.
func (b Backend) Broker(t testing.TB) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	br, err := broker.Open(ctx, broker.Config{URL: b.NATSURL, Name: t.Name()}, Logger(t))
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(br.Close)
	if err := events.EnsureStreams(ctx, br.JS, b.Names, events.Topology{}); err != nil {
		t.Fatalf("ensure streams: %v", err)
	}
	return br
}

// DB opens the database of service on this backend (not migrated).
func (b Backend) DB(t testing.TB, service string) *bun.DB {
	t.Helper()
	db, err := database.Open(context.Background(), database.Config{URL: b.DatabaseURL, DataDir: b.DataDir, Service: service})
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Env returns the process environment of a run() on this backend.
func (b Backend) Env(extra map[string]string) func(string) string {
	env := map[string]string{
		"APITOSMS_DATA_DIR":     b.DataDir,
		"APITOSMS_NAMESPACE":    b.Namespace,
		"APITOSMS_NATS_URL":     b.NATSURL,
		"APITOSMS_DATABASE_URL": b.DatabaseURL,
		"APITOSMS_HTTP_ADDR":    "127.0.0.1:0",
		"APITOSMS_LOG_LEVEL":    "warn",
	}
	for k, v := range extra {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

// Logger writes to the test log at warn level and above (set
// APITOSMS_TEST_VERBOSE=1 for everything).
func Logger(t testing.TB) *slog.Logger {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("APITOSMS_TEST_VERBOSE") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	defer func() { _ = recover() }() // a log line after the test ended is dropped
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Discard is a logger that writes nothing.
var Discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func createDatabase(t testing.TB, adminURL, ns string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatalf("postgres at %s unreachable: %v", EnvDatabase, err)
	}
	defer func() { _ = conn.Close(ctx) }()
	name := "apitosms_" + ns
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Errorf("drop database: %v", err)
			return
		}
		defer func() { _ = c.Close(ctx) }()
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database: %v", err)
		}
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvDatabase, err)
	}
	u.Path = "/" + name
	return u.String()
}

// cleanupNATS deletes every stream (and so every KV and object bucket) of the
// namespace from a shared server.
func cleanupNATS(t testing.TB, natsURL string, n events.Names) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	br, err := broker.Open(ctx, broker.Config{URL: natsURL, Name: "testkit-cleanup"}, Discard)
	if err != nil {
		t.Errorf("cleanup nats: %v", err)
		return
	}
	defer br.Close()
	prefix := strings.ToUpper(n.Namespace()) + "_"
	names := br.JS.StreamNames(ctx)
	var doomed []string
	for name := range names.Name() {
		trimmed := strings.TrimPrefix(strings.TrimPrefix(name, "KV_"), "OBJ_")
		if strings.HasPrefix(trimmed, prefix) {
			doomed = append(doomed, name)
		}
	}
	for _, name := range doomed {
		if err := br.JS.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete stream %s: %v", name, err)
		}
	}
}

// Eventually polls cond every 10 ms until it is true, failing the test
// (t.Fatalf: call it from the test's goroutine) once the timeout passed.
// It is for observable state with no event to wait on; prefer a channel.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	EventuallyEvery(t, timeout, 10*time.Millisecond, what, cond)
}

// EventuallyEvery is Eventually polling every interval: for a condition
// whose check costs something (an HTTP call that counts in a rate window).
func EventuallyEvery(t testing.TB, timeout, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Within(timeout, interval, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Within polls cond every interval until it is true (and returns true) or
// the timeout passed (false): for a test that acts on either answer.
func Within(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// Run runs a service's Run in the background until the test ends; then it
// cancels it and fails the test unless Run returns nil within 20 s.
func Run(t testing.TB, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
}

// LeakIgnores are the goroutines of third-party code a test cannot stop,
// for goleak.VerifyTestMain(m, testkit.LeakIgnores()...). Nothing of ours
// belongs here: a goroutine of ours left running is a bug to fix. (Any, not
// Top: both sleep, so time.Sleep is the top of their stacks.)
func LeakIgnores() []goleak.Option {
	return []goleak.Option{
		// fasthttp (under fiber) starts one process-wide goroutine, on the
		// first server, that refreshes the Date header every second and
		// never stops.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		// A fasthttp server's idle-worker cleaner: Shutdown stops it, but it
		// sees the stop only after its current sleep (MaxIdleWorkerDuration,
		// 10 s, not settable through fiber).
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	}
}
