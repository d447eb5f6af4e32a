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
	"github.com/apitosms/apitosms/libs/buildinfo"
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
	// OnReady, if set, is called with the HTTP address once the server
	// listens and every service is ready (what /readyz answers).
	OnReady func(addr string)
}

// UsageError is a command line or configuration the process cannot run
// with: an unknown command, flag or argument, or a malformed setting.
// Retrying will not help; main exits 2 (runtime failures exit 1).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Run runs the command line in rt until ctx is cancelled: a command
// (apitosms version, help, bench, ...) or, by default, the server. Asking
// for help (-h) prints it and returns nil.
func Run(ctx context.Context, rt Runtime) error {
	err := dispatch(ctx, rt)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, rt Runtime) error {
	args := rt.Args
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return serve(ctx, rt, args) // flags only: the default command
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return usageErrorf("unknown command %q (commands: %s; see apitosms help)", args[0], strings.Join(commandNames(), ", "))
	}
	return cmd.run(ctx, rt, args[1:])
}

// infra is the shared infrastructure of one process.
type infra struct {
	common config.Common
	reader *config.Reader
	broker *broker.Broker
	names  events.Names
	reg    *prometheus.Registry
	log    *slog.Logger
	dbs    map[string]*bun.DB
	// closeBy bounds close once shutdown has begun.
	closeBy time.Time
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

// close drains NATS, stops the embedded server and closes the databases,
// giving up at in.closeBy (if set): everything acknowledged is already on
// disk, so a drain cut short loses nothing, and the process must exit
// within its shutdown budget.
func (in *infra) close() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if in.broker != nil {
			in.broker.Close()
		}
		for _, db := range in.dbs {
			_ = db.Close()
		}
	}()
	if in.closeBy.IsZero() {
		<-done
		return
	}
	select {
	case <-done:
	case <-time.After(time.Until(in.closeBy)):
		in.log.Warn("shutdown budget spent while closing NATS and databases; exiting anyway")
	}
}

// serveFlags are the flags of the server (apitosms [serve] [flags]).
func serveFlags(envTarget string) (*flag.FlagSet, *string, *bool) {
	fs := flag.NewFlagSet("apitosms", flag.ContinueOnError)
	target := fs.String("target", envTarget, "services to run: all, or a comma list of "+strings.Join(targetNames(), ", ")+" (env APITOSMS_TARGET)")
	version := fs.Bool("version", false, "print the version and exit")
	return fs, target, version
}

// plan is what the configuration says this process runs.
type plan struct {
	names    []string
	common   config.Common
	builders []builder
}

// readPlan reads the targets and every configuration they need, and refuses
// (UsageError) anything malformed before the process starts anything.
func readPlan(target string, reader *config.Reader) (plan, error) {
	names, err := parseTargets(target)
	if err != nil {
		return plan{}, &UsageError{Err: err}
	}
	p := plan{names: names, common: config.ReadCommon(reader)}
	for _, n := range names {
		t, _ := lookupTarget(n) // parseTargets returns known names only
		p.builders = append(p.builders, t.prepare(reader, p.common))
	}
	if err := reader.Err(); err != nil {
		return plan{}, &UsageError{Err: err}
	}
	return p, nil
}

// dataDirUse says how the process uses the data dir: not at all (external
// NATS and PostgreSQL), shared (SQLite files only) or owned (embedded NATS).
func (p plan) dataDirUse() (uses, exclusive bool) {
	if p.common.NATSURL == "" {
		return true, true
	}
	if p.common.DatabaseURL == "" && anyTrait(p.names, ownsDB) {
		return true, false
	}
	return false, false
}

func serve(ctx context.Context, rt Runtime, args []string) (err error) {
	reader := config.NewReader(rt.Getenv)
	fs, target, version := serveFlags(reader.String("APITOSMS_TARGET", "all"))
	if err := parseFlags(rt, fs, args, printHelp); err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(rt.Stdout, buildinfo.String())
		return nil
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q (commands go first: apitosms <command>; see apitosms help)", fs.Arg(0))
	}
	p, err := readPlan(*target, reader)
	if err != nil {
		return err
	}
	common, names := p.common, p.names
	// No secret reaches a log line or the error this returns.
	rd := common.Redactor()
	defer func() { err = redactError(err, rd) }()
	log := newLogger(rt.Stderr, common.LogLevel, rd)
	log.Info("apitosms starting", "version", buildinfo.Version(), "commit", buildinfo.Commit())
	log.Info("go memory limit", "bytes", applyMemoryLimit(rt.Getenv))

	if uses, exclusive := p.dataDirUse(); uses {
		lock, err := lockDataDir(common.DataDir, exclusive)
		if err != nil {
			return err
		}
		defer lock.release() // after everything below closed (deferred earlier runs later)
	}

	started := time.Now()
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
	if in.broker.Embedded() {
		if err := redeliverOrphans(startCtx, in.broker.JS, log); err != nil {
			// Not fatal: they come back after the ack wait anyway, and
			// /readyz waits for them.
			log.Warn("could not redeliver what the previous run held at once", "err", err)
		}
	}
	svcs := make([]service, 0, len(names))
	for i, n := range names {
		s, err := p.builders[i](startCtx, in)
		if err != nil {
			return fmt.Errorf("start %s: %w", n, err)
		}
		svcs = append(svcs, s)
	}
	registerProcessMetrics(in, names, svcs)
	healthSub, err := answerHealth(in, names, svcs, rd)
	if err != nil {
		return err
	}
	defer func() { _ = healthSub.Unsubscribe() }()
	if common.AdminToken == "" && anyTrait(names, operator) {
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
	go func() {
		if waitReady(svcCtx, svcs) {
			log.Info("apitosms ready", "after", time.Since(started).Round(time.Millisecond).String())
			if rt.OnReady != nil {
				rt.OnReady(ln.Addr().String())
			}
		}
	}()

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
	// Ordered shutdown under one deadline for all of it (orchestrators kill
	// after a fixed grace period: Kubernetes' default is 30 s): stop HTTP
	// intake and let in-flight requests finish (at most half the budget),
	// then let services drain their consumers and handlers, then (deferred)
	// drain NATS, stop the embedded server, close the databases with what
	// is left. A stage that overruns is cut off; nothing acknowledged
	// depends on it.
	budget := shutdownBudget(common.ShutdownTimeout)
	in.closeBy = time.Now().Add(budget.total)
	if err := web.ShutdownWithTimeout(budget.http); err != nil {
		log.Warn("http shutdown: in-flight requests cut off", "err", err)
	}
	stopServices()
	deadline := time.NewTimer(time.Until(in.closeBy.Add(-budget.close)))
	defer deadline.Stop()
	for ; running > 0; running-- {
		select {
		case err := <-exited:
			if err != nil && failure == nil && !errors.Is(err, net.ErrClosed) {
				log.Warn("component stopped with error", "err", err)
			}
		case <-deadline.C:
			log.Warn("shutdown timed out", "still_running", running)
			return errors.Join(failure, errors.New("shutdown timed out"))
		}
	}
	log.Debug("services stopped; closing NATS and databases", "left", time.Until(in.closeBy).Round(time.Millisecond).String())
	return failure
}

// waitReady polls every service's Ready (what /readyz answers) until all
// are ready, and reports whether they became so before ctx ended.
func waitReady(ctx context.Context, svcs []service) bool {
	poll := 10 * time.Millisecond
	for {
		ready := true
		for _, s := range svcs {
			c, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := s.Ready(c)
			cancel()
			if err != nil {
				ready = false
				break
			}
		}
		if ready {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(poll):
		}
		poll = min(2*poll, 500*time.Millisecond)
	}
}

// stages is how a shutdown budget is shared: HTTP gets at most half, the
// final close (NATS drain, embedded server, databases) keeps a fifth for
// itself, and the services get what HTTP left before that.
type stages struct{ total, http, close time.Duration }

func shutdownBudget(total time.Duration) stages {
	if total <= 0 {
		total = time.Second
	}
	return stages{total: total, http: total / 2, close: total / 5}
}

// newLogger logs JSON lines at level (one of config.LogLevels) to w, with
// every secret replaced by xxxxx.
func newLogger(w io.Writer, level string, rd *config.Redactor) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo // not reached: the configuration refuses other levels
	}
	var h slog.Handler = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})
	if !rd.Empty() {
		h = redactHandler{inner: h, rd: rd}
	}
	return slog.New(h)
}
