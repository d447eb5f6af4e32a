package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/apitosms/apitosms/internal/cli"
	"github.com/apitosms/apitosms/internal/loadgen"
	"github.com/apitosms/apitosms/internal/phonesim"
	"github.com/apitosms/apitosms/libs/buildinfo"
	"github.com/apitosms/apitosms/libs/config"
)

// command is one subcommand: apitosms <name> [args].
type command struct {
	args    string // synopsis of its arguments, e.g. "[flags]"
	summary string // one line for `apitosms help`
	run     func(ctx context.Context, rt Runtime, args []string) error
}

// commands are the subcommands. To add one, add it in init below; help
// lists it. A first argument that is neither a command nor a flag is refused.
var commands = map[string]command{}

// primary commands come first in the help, the rest alphabetically.
var primary = []string{"serve", "version", "help"}

func init() {
	commands["serve"] = command{"[-target=all|<services>]", "run the server (the default when no command is given)", serveCommand}
	commands["version"] = command{"", "print the version, commit and Go version", versionCommand}
	commands["help"] = command{"[command]", "print this help, or a command's flags", helpCommand}
	// The load tools ship in the server binary (see docs/benchmarks.md).
	commands["bench"] = command{"[flags]", "drive a server with load and report what it measured", benchCommand}
	commands["bench-compare"] = command{"BASE HEAD", "compare two sets of bench -json results: medians and ratios", benchCompareCommand}
	commands["phone"] = command{"-token T [flags]", "simulate phones pulling, sending and reporting", phoneCommand}
	// The image's HEALTHCHECK (deployments/Dockerfile).
	commands["health"] = command{"[-addr host:port]", "exit 0 when the local server answers /readyz, 1 otherwise", healthCommand}
	// The merchant commands (docs/api.md, "Go client and CLI").
	commands["send"] = command{"[-phone P -text T | file.csv]", "queue SMS through the API (a CSV of phone,message for bulk sends)", merchantCommand(cli.Send)}
	commands["status"] = command{"HASH[:sent|:failed]...", "report statuses for hashes as a phone would", merchantCommand(cli.Status)}
	commands["messages"] = command{"[-json]", "pull waiting messages as a phone would (get_messages)", merchantCommand(cli.Messages)}
}

// commandNames lists the commands in help order.
func commandNames() []string {
	names := slices.Clone(primary)
	var rest []string
	for n := range commands {
		if !slices.Contains(primary, n) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(names, rest...)
}

// parseFlags parses args into fs. -h or --help prints help (full help for
// the server, fs's flags for other commands) to stdout and returns
// flag.ErrHelp, which Run turns into success; a bad flag is a *UsageError.
func parseFlags(rt Runtime, fs *flag.FlagSet, args []string, help func(w io.Writer, fs *flag.FlagSet)) error {
	fs.SetOutput(io.Discard) // errors are returned, help printed below
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		help(rt.Stdout, fs)
		return flag.ErrHelp
	case err != nil:
		return usageErrorf("%v (see %s -h)", err, fs.Name())
	}
	return nil
}

// flagHelp prints a command's flags.
func flagHelp(w io.Writer, fs *flag.FlagSet) {
	name := strings.TrimPrefix(fs.Name(), "apitosms ")
	if c, ok := commands[name]; ok {
		fmt.Fprintf(w, "Usage: %s %s\n\n%s.\n\nFlags:\n", fs.Name(), c.args, upperFirst(c.summary))
	}
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// serveCommand: apitosms serve [flags] is apitosms [flags].
func serveCommand(ctx context.Context, rt Runtime, args []string) error {
	return serve(ctx, rt, args)
}

// versionCommand: apitosms version.
func versionCommand(_ context.Context, rt Runtime, args []string) error {
	if len(args) > 0 {
		return usageErrorf("version takes no arguments, got %q", args[0])
	}
	_, err := fmt.Fprintln(rt.Stdout, buildinfo.String())
	return err
}

// helpCommand: apitosms help [command].
func helpCommand(ctx context.Context, rt Runtime, args []string) error {
	switch {
	case len(args) == 0 || args[0] == "serve":
		printHelp(rt.Stdout, nil)
		return nil
	case len(args) > 1:
		return usageErrorf("help takes at most one command, got %q", args)
	}
	if _, ok := commands[args[0]]; !ok {
		return usageErrorf("unknown command %q (commands: %s)", args[0], strings.Join(commandNames(), ", "))
	}
	// A command's own -h prints its flags.
	return commands[args[0]].run(ctx, Runtime{Stdout: rt.Stdout, Stderr: rt.Stderr, Getenv: func(string) string { return "" }}, []string{"-h"})
}

// printHelp prints the whole help: commands, the server's flags and every
// environment variable the services read, with its default.
func printHelp(w io.Writer, _ *flag.FlagSet) {
	b := &strings.Builder{}
	fmt.Fprintf(b, "apitosms %s: a self-hostable SMS gateway, wire-compatible with API to SMS.\n\n", buildinfo.Version())
	b.WriteString("Usage:\n  apitosms [command] [flags]\n\nCommands:\n")
	for _, n := range commandNames() {
		c := commands[n]
		fmt.Fprintf(b, "  %-13s %-30s %s\n", n, c.args, c.summary)
	}
	b.WriteString("\nFlags of serve (also accepted without the word serve):\n")
	fs, _, _ := serveFlags("all")
	fs.SetOutput(b)
	fs.PrintDefaults()
	b.WriteString("  -h, --help\n    \tprint this help\n")
	b.WriteString("\nEnvironment (a malformed value is refused at start, naming the variable):\n")
	for _, v := range envVars() {
		def := "unset by default"
		if v.Default != "" {
			def = "default " + v.Default
		}
		fmt.Fprintf(b, "  %s (%s)\n      %s\n", v.Key, def, config.Meaning(v.Key))
	}
	fmt.Fprintf(b, "  GOMEMLIMIT (default %dMiB)\n      Go runtime soft memory limit (e.g. 1GiB, or off)\n", defaultMemoryLimit>>20)
	b.WriteString("\nWith neither APITOSMS_NATS_URL nor APITOSMS_DATABASE_URL, everything runs in one process\n" +
		"on an embedded NATS server and SQLite under APITOSMS_DATA_DIR. See docs/operations.md.\n" +
		"\nExit status: 0 success (and after SIGTERM), 1 runtime failure, 2 bad command line or configuration.\n")
	_, _ = io.WriteString(w, b.String())
}

// envVars lists every variable the server reads, with its default: it reads
// the configuration of every service from an empty environment.
func envVars() []config.Var {
	r := config.NewReader(func(string) string { return "" })
	r.String("APITOSMS_TARGET", "all")
	c := config.ReadCommon(r)
	for _, t := range targets {
		t.prepare(r, c)
	}
	return r.Vars()
}

// benchCommand: apitosms bench [flags] — drive a server and print what it
// measured (a summary, or JSON with -json; -table appends a Markdown row).
func benchCommand(ctx context.Context, rt Runtime, args []string) error {
	fs := flag.NewFlagSet("apitosms bench", flag.ContinueOnError)
	var cfg loadgen.Config
	fs.StringVar(&cfg.URL, "url", "", "base URL of a running server (or use -spawn)")
	// The token's default is not the flag's: -h would print it.
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "operator token of that server (default: env APITOSMS_ADMIN_TOKEN)")
	fs.IntVar(&cfg.PID, "pid", 0, "pid of that server, to report its CPU and peak RSS")
	spawn := fs.Bool("spawn", false, "start the server for this run (free port, fresh data dir, namespace and database), stop it afterwards")
	bin := fs.String("bin", "", "server binary for -spawn (default: this executable)")
	natsURL := fs.String("nats-url", "", "with -spawn: external NATS for the distributed mode")
	dbURL := fs.String("database-url", "", "with -spawn: postgres:// URL of an existing database; a fresh one is created beside it and dropped afterwards")
	serverLog := fs.String("server-log", "", "with -spawn: append the server's log to this file")
	var env multiFlag
	fs.Var(&env, "env", "with -spawn: extra KEY=VALUE for the server (repeatable)")
	fs.StringVar(&cfg.Scenario, "scenario", "bench", "label of this run in the table")
	fs.StringVar(&cfg.Mode, "mode", loadgen.ModeMixed, "ingest (queue only), drain (prefill, then pull+report), mixed, lookup (prefill, then bulk lookups of 1000), or stores (a WooCommerce store per merchant; signed order deliveries, each a new order, until each became a queued SMS)")
	fs.IntVar(&cfg.Merchants, "merchants", 4, "concurrent merchant clients, each with its own account")
	fs.IntVar(&cfg.Batch, "batch", 1000, "messages per queue request (1 sends a bare object)")
	fs.IntVar(&cfg.Phones, "phones", 8, "concurrent phones, spread over the merchants' accounts")
	fs.IntVar(&cfg.Limit, "limit", 200, "get_messages limit")
	fs.IntVar(&cfg.Senders, "senders", 32, "stores mode: concurrent senders of shop deliveries, round robin over the merchants' stores")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "measured window (drain: its cap; 0 = none)")
	fs.Int64Var(&cfg.Messages, "messages", 0, "ingest/mixed: stop after this many accepted in the window; drain: same as -prefill")
	fs.Int64Var(&cfg.Prefill, "prefill", 0, "queue this many messages before the window (drain default 200000), e.g. to measure with millions waiting")
	fs.Float64Var(&cfg.Scheduled, "scheduled", 0, "share of queued messages with a sendAt 29 days ahead (contract §12: waiting, never due in the run)")
	fs.Float64Var(&cfg.High, "high", 0, `share of queued messages with "priority":"high" (contract §12)`)
	fs.Float64Var(&cfg.Success, "success", 1, "share of messages phones report sent (2); the rest failed (3)")
	fs.DurationVar(&cfg.Delay, "delay", 0, "phones' simulated sending time per message")
	fs.DurationVar(&cfg.Idle, "idle", 20*time.Millisecond, "phones' wait after an empty poll (mixed)")
	fs.DurationVar(&cfg.PollEvery, "poll-every", 0, "pace the phones like SIM-bound ones: each starts a poll at most once per this interval (0: poll again as soon as the report is answered)")
	fs.BoolVar(&cfg.Webhooks, "webhooks", false, `give each merchant account a "batch": true webhook on a receiver in this tool and report the events delivered (needs -env APITOSMS_WEBHOOK_ALLOW_PRIVATE=true)`)
	fs.BoolVar(&cfg.Verify, "verify", false, "afterwards drain the rest and check every accepted message was pulled and reported exactly once")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	table := fs.String("table", "", "append the result as a Markdown row to this file (header added when missing)")
	quiet := fs.Bool("q", false, "no progress lines")
	watch := fs.String("watch", "", "comma list of process names whose CPU to report as infrastructure (default with -spawn -nats-url: nats-server,postgres)")
	cpuProfile := fs.String("cpuprofile", "", "write this tool's own CPU profile to the file")
	if err := parseFlags(rt, fs, args, flagHelp); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("bench: unexpected arguments %q", fs.Args())
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = rt.Getenv("APITOSMS_ADMIN_TOKEN")
	}
	if !*quiet {
		cfg.Log = rt.Stderr
	}
	if *watch != "" {
		cfg.Watch = strings.Split(*watch, ",")
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }() // a profile: pprof.StopCPUProfile flushed it
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *spawn {
		sc := &loadgen.SpawnConfig{Bin: *bin, NATSURL: *natsURL, DatabaseURL: *dbURL, Env: env}
		if sc.Bin == "" {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			sc.Bin = exe
		}
		if *serverLog != "" {
			f, err := os.OpenFile(*serverLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644) //nolint:gosec // G302: a log the developer reads
			if err != nil {
				return err
			}
			defer func() { _ = f.Close() }() // the server's log, appended to as it goes
			sc.Log = f
		}
		cfg.Spawn = sc
	} else if *natsURL != "" || *dbURL != "" || len(env) > 0 {
		return usageErrorf("bench: -nats-url, -database-url and -env need -spawn")
	}
	res, err := loadgen.Run(ctx, cfg)
	if res == nil {
		return err
	}
	if *asJSON {
		if jerr := res.WriteJSON(rt.Stdout); jerr != nil {
			return errors.Join(err, jerr)
		}
	} else {
		res.WriteSummary(rt.Stdout)
		fmt.Fprint(rt.Stdout, "\n"+loadgen.TableHeader+res.Row())
	}
	if *table != "" {
		if terr := appendRow(*table, res.Row()); terr != nil {
			err = errors.Join(err, terr)
		}
	}
	if err == nil && res.Verified != nil && !*res.Verified {
		err = fmt.Errorf("bench: verification failed: %s", res.VerifyError)
	}
	return err
}

// appendRow appends row to the Markdown file at path, after the table
// header if the file has none yet.
func appendRow(path, row string) error {
	old, err := os.ReadFile(path) //nolint:gosec // G304: the table file the developer named
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644) //nolint:gosec // G302: a Markdown report, meant to be read
	if err != nil {
		return err
	}
	out := row
	if !strings.Contains(string(old), loadgen.TableHeader) {
		out = "\n" + loadgen.TableHeader + row
	}
	if _, err := f.WriteString(out); err != nil {
		_ = f.Close() // the write error is the one to report
		return err
	}
	return f.Close()
}

// phoneCommand: apitosms phone -token T [flags] — simulate phones polling,
// sending and reporting until -duration, -count or an interrupt.
func phoneCommand(ctx context.Context, rt Runtime, args []string) error {
	fs := flag.NewFlagSet("apitosms phone", flag.ContinueOnError)
	var cfg phonesim.Config
	var opts phonesim.RunOptions
	fs.StringVar(&cfg.URL, "url", "http://localhost:8080", "server base URL")
	fs.StringVar(&cfg.Token, "token", "", "the account's API token (required)")
	fs.IntVar(&cfg.Limit, "limit", 100, "get_messages limit")
	fs.Float64Var(&cfg.Success, "success", 0.95, "share of messages reported sent (2); the rest failed (3)")
	fs.DurationVar(&cfg.Delay, "delay", 0, "simulated sending time per message")
	fs.StringVar(&cfg.Device, "device", "phonesim", "device name sent with reports (cut to 15 characters by the server)")
	fs.IntVar(&opts.Concurrency, "concurrency", 1, "phones polling in parallel on this token")
	fs.DurationVar(&opts.Idle, "interval", time.Second, "wait after an empty poll")
	fs.Int64Var(&opts.Count, "count", 0, "stop after this many messages (0: no limit)")
	fs.BoolVar(&opts.StopWhenEmpty, "drain", false, "stop at the first empty poll")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	if err := parseFlags(rt, fs, args, flagHelp); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("phone: unexpected arguments %q", fs.Args())
	}
	if cfg.Token == "" {
		return usageErrorf("phone: -token is required")
	}
	if cfg.Success < 0 || cfg.Success > 1 {
		return usageErrorf("phone: -success must be within 0..1")
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	start := time.Now()
	opts.Log = rt.Stderr
	stats, err := phonesim.Run(ctx, cfg, opts)
	secs := time.Since(start).Seconds()
	fmt.Fprintf(rt.Stdout, "%s in %.1f s (%.0f SMS/s)\n", stats, secs, float64(stats.Reported)/secs)
	return err
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
