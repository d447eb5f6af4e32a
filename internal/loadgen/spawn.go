package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/database"
)

// SpawnConfig describes a server the load generator starts itself.
type SpawnConfig struct {
	Bin string // the apitosms binary
	// NATSURL selects an external NATS server; empty means the embedded one.
	NATSURL string
	// DatabaseURL is a postgres:// URL of an existing database used only to
	// create (and finally drop) a fresh database for the run; empty means SQLite.
	DatabaseURL string
	Env         []string  // extra KEY=VALUE settings for the server
	Log         io.Writer // also gets the server's stderr (always kept for errors)
}

// Server is a spawned apitosms process on a free loopback port with a
// fresh data dir, namespace and (in distributed mode) database.
type Server struct {
	URL        string // http://127.0.0.1:<port>
	AdminToken string
	PID        int
	Backend    string // "all-in-one" or "distributed"
	Namespace  string

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	dir     string
	logPath string
	natsURL string
	adminDB string // URL the fresh database was created from
	dbName  string
	stopped bool
}

// Spawn starts cfg.Bin and waits until /readyz answers 200. Stop the
// server with Stop, which also removes everything the run created.
func Spawn(ctx context.Context, cfg SpawnConfig) (*Server, error) {
	if (cfg.NATSURL == "") != (cfg.DatabaseURL == "") {
		return nil, errors.New("spawn: give both a NATS URL and a database URL, or neither")
	}
	dir, err := os.MkdirTemp("", "apitosms-bench-")
	if err != nil {
		return nil, err
	}
	s := &Server{
		AdminToken: randomHex(24),
		Namespace:  "bench" + randomHex(6),
		Backend:    "all-in-one",
		exited:     make(chan struct{}),
		dir:        dir,
		natsURL:    cfg.NATSURL,
	}
	addr, err := freeAddr()
	if err != nil {
		_ = s.cleanup()
		return nil, err
	}
	s.URL = "http://" + addr
	env := []string{
		"APITOSMS_HTTP_ADDR=" + addr,
		"APITOSMS_PUBLIC_URL=" + s.URL,
		"APITOSMS_DATA_DIR=" + filepath.Join(dir, "data"),
		"APITOSMS_ADMIN_TOKEN=" + s.AdminToken,
		"APITOSMS_NAMESPACE=" + s.Namespace,
		"APITOSMS_LOG_LEVEL=warn",
	}
	if cfg.NATSURL != "" {
		s.Backend = "distributed"
		dbURL, err := s.createDatabase(ctx, cfg.DatabaseURL)
		if err != nil {
			_ = s.cleanup()
			return nil, err
		}
		env = append(env, "APITOSMS_NATS_URL="+cfg.NATSURL, "APITOSMS_DATABASE_URL="+dbURL)
	}
	s.cmd = exec.Command(cfg.Bin)
	s.cmd.Env = append(append(inheritedEnv(), env...), cfg.Env...)
	s.logPath = filepath.Join(dir, "server.log")
	f, err := os.Create(s.logPath)
	if err != nil {
		_ = s.cleanup()
		return nil, err
	}
	// f is closed once the server has exited (see below).
	s.cmd.Stderr = f
	if cfg.Log != nil {
		s.cmd.Stderr = io.MultiWriter(f, cfg.Log)
	}
	if err := s.cmd.Start(); err != nil {
		_ = f.Close()
		_ = s.cleanup()
		return nil, fmt.Errorf("start %s: %w", cfg.Bin, err)
	}
	s.PID = s.cmd.Process.Pid
	go func() { s.waitErr = s.cmd.Wait(); _ = f.Close(); close(s.exited) }()
	if err := s.waitReady(ctx, 90*time.Second); err != nil {
		tail := s.LogTail(20)
		_ = s.Stop()
		return nil, fmt.Errorf("%w\n%s", err, tail)
	}
	return s, nil
}

// waitReady polls /readyz until it answers 200.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("server exited at start: %w", s.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := c.Get(s.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not ready after %v", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Sample reads the server's CPU time and resident memory.
func (s *Server) Sample() (ProcSample, error) { return ReadProc(s.PID) }

// Stop sends SIGTERM, waits up to 30 s (then kills), and removes the data
// dir, the namespace's streams and buckets, and the fresh database. A
// server that exits non-zero or has to be killed is an error, whose text
// ends with the last lines of the server's log.
func (s *Server) Stop() error {
	if s.stopped {
		return nil
	}
	s.stopped = true
	var err error
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
			if s.waitErr != nil {
				err = fmt.Errorf("server exit after SIGTERM: %w", s.waitErr)
			}
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
			err = errors.New("server did not stop within 30 s of SIGTERM; killed")
		}
		if err != nil {
			if tail := s.LogTail(5); tail != "" {
				err = fmt.Errorf("%w\n%s", err, tail)
			}
		}
	}
	return errors.Join(err, s.cleanup())
}

// LogTail returns the last n lines of the server's log (when kept in a file).
func (s *Server) LogTail(n int) string {
	if s.logPath == "" {
		return ""
	}
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

func (s *Server) cleanup() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if s.natsURL != "" {
		errs = append(errs, deleteNamespace(ctx, s.natsURL, s.Namespace))
	}
	if s.dbName != "" {
		errs = append(errs, dropDatabase(ctx, s.adminDB, s.dbName))
	}
	errs = append(errs, os.RemoveAll(s.dir))
	return errors.Join(errs...)
}

// createDatabase creates a fresh database on the server of adminURL and
// returns its URL.
func (s *Server) createDatabase(ctx context.Context, adminURL string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", fmt.Errorf("database URL: %w", err)
	}
	name := "apitosms_" + s.Namespace
	db, err := database.Open(ctx, database.Config{URL: adminURL, Service: "bench"})
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	s.adminDB, s.dbName = adminURL, name
	u.Path = "/" + name
	return u.String(), nil
}

func dropDatabase(ctx context.Context, adminURL, name string) error {
	db, err := database.Open(ctx, database.Config{URL: adminURL, Service: "bench"})
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// deleteNamespace deletes every stream of namespace ns (its streams
// <NS>_..., key-value buckets KV_<NS>_... and object stores OBJ_<NS>_...).
func deleteNamespace(ctx context.Context, natsURL, ns string) error {
	br, err := broker.Open(ctx, broker.Config{URL: natsURL, Name: "apitosms-bench-cleanup"},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer br.Close()
	prefix := strings.ToUpper(ns) + "_"
	var doomed []string
	names := br.JS.StreamNames(ctx)
	for name := range names.Name() {
		trimmed := strings.TrimPrefix(strings.TrimPrefix(name, "KV_"), "OBJ_")
		if strings.HasPrefix(trimmed, prefix) {
			doomed = append(doomed, name)
		}
	}
	var errs []error
	if err := names.Err(); err != nil {
		errs = append(errs, err)
	}
	for _, name := range doomed {
		if err := br.JS.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, fmt.Errorf("delete stream %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// inheritedEnv is this process's environment without APITOSMS_ settings,
// which the spawned server gets only from Spawn.
func inheritedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "APITOSMS_") {
			env = append(env, kv)
		}
	}
	return env
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
