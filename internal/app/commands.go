package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/apitosms/apitosms/internal/loadgen"
	"github.com/apitosms/apitosms/internal/phonesim"
)

// The load tools ship in the server binary: `apitosms bench` and
// `apitosms phone` (see docs/benchmarks.md).
func init() {
	commands["bench"] = benchCommand
	commands["phone"] = phoneCommand
	commands["health"] = healthCommand
}

// benchCommand: apitosms bench [flags] — drive a server and print what it
// measured (a summary, or JSON with -json; -table appends a Markdown row).
func benchCommand(ctx context.Context, rt Runtime, args []string) error {
	fs := flag.NewFlagSet("apitosms bench", flag.ContinueOnError)
	fs.SetOutput(rt.Stderr)
	var cfg loadgen.Config
	fs.StringVar(&cfg.URL, "url", "", "base URL of a running server (or use -spawn)")
	fs.StringVar(&cfg.AdminToken, "admin-token", rt.Getenv("APITOSMS_ADMIN_TOKEN"), "operator token of that server (env APITOSMS_ADMIN_TOKEN)")
	fs.IntVar(&cfg.PID, "pid", 0, "pid of that server, to report its CPU and peak RSS")
	spawn := fs.Bool("spawn", false, "start the server for this run (free port, fresh data dir, namespace and database), stop it afterwards")
	bin := fs.String("bin", "", "server binary for -spawn (default: this executable)")
	natsURL := fs.String("nats-url", "", "with -spawn: external NATS for the distributed mode")
	dbURL := fs.String("database-url", "", "with -spawn: postgres:// URL of an existing database; a fresh one is created beside it and dropped afterwards")
	serverLog := fs.String("server-log", "", "with -spawn: append the server's log to this file")
	var env multiFlag
	fs.Var(&env, "env", "with -spawn: extra KEY=VALUE for the server (repeatable)")
	fs.StringVar(&cfg.Scenario, "scenario", "bench", "label of this run in the table")
	fs.StringVar(&cfg.Mode, "mode", loadgen.ModeMixed, "ingest (queue only), drain (prefill, then pull+report) or mixed")
	fs.IntVar(&cfg.Merchants, "merchants", 4, "concurrent merchant clients, each with its own account")
	fs.IntVar(&cfg.Batch, "batch", 1000, "messages per queue request (1 sends a bare object)")
	fs.IntVar(&cfg.Phones, "phones", 8, "concurrent phones, spread over the merchants' accounts")
	fs.IntVar(&cfg.Limit, "limit", 200, "get_messages limit")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "measured window (drain: its cap; 0 = none)")
	fs.Int64Var(&cfg.Messages, "messages", 0, "ingest/mixed: stop after this many accepted in the window; drain: same as -prefill")
	fs.Int64Var(&cfg.Prefill, "prefill", 0, "queue this many messages before the window (drain default 200000), e.g. to measure with millions waiting")
	fs.Float64Var(&cfg.Success, "success", 1, "share of messages phones report sent (2); the rest failed (3)")
	fs.DurationVar(&cfg.Delay, "delay", 0, "phones' simulated sending time per message")
	fs.DurationVar(&cfg.Idle, "idle", 20*time.Millisecond, "phones' wait after an empty poll (mixed)")
	fs.BoolVar(&cfg.Verify, "verify", false, "afterwards drain the rest and check every accepted message was pulled and reported exactly once")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	table := fs.String("table", "", "append the result as a Markdown row to this file (header added when missing)")
	quiet := fs.Bool("q", false, "no progress lines")
	watch := fs.String("watch", "", "comma list of process names whose CPU to report as infrastructure (default with -spawn -nats-url: nats-server,postgres)")
	cpuProfile := fs.String("cpuprofile", "", "write this tool's own CPU profile to the file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected arguments %q", fs.Args())
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
		defer f.Close()
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
			f, err := os.OpenFile(*serverLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			defer f.Close()
			sc.Log = f
		}
		cfg.Spawn = sc
	} else if *natsURL != "" || *dbURL != "" || len(env) > 0 {
		return errors.New("bench: -nats-url, -database-url and -env need -spawn")
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
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	out := row
	if !strings.Contains(string(old), loadgen.TableHeader) {
		out = "\n" + loadgen.TableHeader + row
	}
	if _, err := f.WriteString(out); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// phoneCommand: apitosms phone -token T [flags] — simulate phones polling,
// sending and reporting until -duration, -count or an interrupt.
func phoneCommand(ctx context.Context, rt Runtime, args []string) error {
	fs := flag.NewFlagSet("apitosms phone", flag.ContinueOnError)
	fs.SetOutput(rt.Stderr)
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Token == "" {
		return errors.New("phone: -token is required")
	}
	if cfg.Success < 0 || cfg.Success > 1 {
		return errors.New("phone: -success must be within 0..1")
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
