// Package app is the process: it reads the configuration, starts the shared
// infrastructure once (NATS connection or embedded server, databases, HTTP
// listener, metrics registry), builds the targeted services, runs them, and
// shuts everything down in order.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/config"
	"github.com/apitosms/apitosms/libs/database"
	"github.com/apitosms/apitosms/libs/events"
)

// Runtime is what the process gets from the outside world.
type Runtime struct {
	Args   []string
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
	// OnReady, if set, is called with the HTTP address once the server listens.
	OnReady func(addr string)
}

// Run runs the command line in rt until ctx is cancelled.
func Run(ctx context.Context, rt Runtime) error {
	if len(rt.Args) > 0 {
		if cmd, ok := commands[rt.Args[0]]; ok {
			return cmd(ctx, rt, rt.Args[1:])
		}
	}
	return serve(ctx, rt, rt.Args)
}

// commands are the subcommands besides serving.
var commands = map[string]func(ctx context.Context, rt Runtime, args []string) error{}

// infra is the shared infrastructure of one process.
type infra struct {
	common config.Common
	reader *config.Reader
	broker *broker.Broker
	names  events.Names
	reg    *prometheus.Registry
	log    *slog.Logger
	dbs    map[string]*bun.DB
}

// db opens (once) the database of service.
func (in *infra) db(ctx context.Context, service string) (*bun.DB, error) {
	if db, ok := in.dbs[service]; ok {
		return db, nil
	}
	db, err := database.Open(ctx, database.Config{URL: in.common.DatabaseURL, DataDir: in.common.DataDir, Service: service})
	if err != nil {
		return nil, fmt.Errorf("%s database: %w", service, err)
	}
	in.dbs[service] = db
	return db, nil
}

func (in *infra) close() {
	if in.broker != nil {
		in.broker.Close()
	}
	for _, db := range in.dbs {
		_ = db.Close()
	}
}

func serve(ctx context.Context, rt Runtime, args []string) error {
	fs := flag.NewFlagSet("apitosms", flag.ContinueOnError)
	fs.SetOutput(rt.Stderr)
	target := fs.String("target", rt.Getenv("APITOSMS_TARGET"), "services to run: all, or a comma list of billing, queue, status, releases, ingress (env APITOSMS_TARGET)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	names, err := parseTargets(*target)
	if err != nil {
		return err
	}
	reader := config.NewReader(rt.Getenv)
	common := config.ReadCommon(reader)
	log := newLogger(rt.Stderr, common.LogLevel)
	log.Info("go memory limit", "bytes", applyMemoryLimit(rt.Getenv))

	in := &infra{common: common, reader: reader, names: events.NewNames(common.Namespace), reg: prometheus.NewRegistry(), log: log, dbs: map[string]*bun.DB{}}
	defer in.close()
	in.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	in.broker, err = broker.Open(startCtx, broker.Config{URL: common.NATSURL, DataDir: common.DataDir, Name: "apitosms-" + strings.Join(names, "+"), CallTimeout: common.BrokerTimeout}, log)
	if err != nil {
		return err
	}
	if err := events.EnsureStreams(startCtx, in.broker.JS, in.names, events.Topology{Replicas: common.Replicas}); err != nil {
		return err
	}
	svcs := make([]service, 0, len(names))
	for _, n := range names {
		m := targets[n]
		if m.needsDB {
			if _, err := in.db(startCtx, n); err != nil {
				return err
			}
		}
		s, err := m.build(startCtx, in)
		if err != nil {
			return fmt.Errorf("start %s: %w", n, err)
		}
		svcs = append(svcs, s)
	}
	if err := reader.Err(); err != nil {
		return err
	}
	if common.AdminToken == "" && (contains(names, "billing") || contains(names, "releases")) {
		log.Warn("operator API disabled: set APITOSMS_ADMIN_TOKEN to a long random secret to enable /admin/v1")
	}

	defer startDebug(common.DebugAddr, log)()
	web := newHTTP(in, svcs)
	ln, err := net.Listen("tcp", common.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", common.HTTPAddr, err)
	}
	log.Info("apitosms started", "targets", strings.Join(names, ","), "http", ln.Addr().String(),
		"embedded_nats", in.broker.Embedded(), "postgres", common.DatabaseURL != "")

	svcCtx, stopServices := context.WithCancel(context.Background())
	defer stopServices()
	exited := make(chan error, len(svcs)+1)
	for i, s := range svcs {
		go func() {
			err := s.Run(svcCtx)
			if err == nil && svcCtx.Err() == nil {
				err = fmt.Errorf("%s stopped unexpectedly", names[i])
			}
			exited <- err
		}()
	}
	go func() { exited <- web.Listener(ln) }()
	if rt.OnReady != nil {
		rt.OnReady(ln.Addr().String())
	}

	var failure error
	running := len(svcs) + 1
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case failure = <-exited:
		running--
		if failure == nil {
			failure = errors.New("http server stopped unexpectedly")
		}
		log.Error("a component failed; stopping", "err", failure)
	}
	// Ordered, bounded shutdown: stop HTTP intake and let in-flight requests
	// finish, then let services drain their consumers and handlers, then
	// (deferred) drain NATS, stop the embedded server, close the databases.
	if err := web.ShutdownWithTimeout(common.ShutdownTimeout); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	stopServices()
	deadline := time.After(common.ShutdownTimeout)
	for ; running > 0; running-- {
		select {
		case err := <-exited:
			if err != nil && failure == nil && !errors.Is(err, net.ErrClosed) {
				log.Warn("component stopped with error", "err", err)
			}
		case <-deadline:
			log.Warn("shutdown timed out", "still_running", running)
			return errors.Join(failure, errors.New("shutdown timed out"))
		}
	}
	return failure
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
