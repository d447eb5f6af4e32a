package app

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/config"
	"github.com/apitosms/apitosms/libs/testkit"
)

// result is one run of the real binary.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// runBinary runs the apitosms binary with args and env (over a clean
// environment: no APITOSMS_ variable of the test process leaks in) and
// waits for it to exit, at most a minute.
func runBinary(t *testing.T, env []string, args ...string) result {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err = cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		t.Fatalf("apitosms %q: %v", args, err)
	}
	return r
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"-version"}, {"serve", "--version"}} {
		r := runBinary(t, nil, args...)
		if r.code != 0 || !regexp.MustCompile(`^apitosms \S+ \(commit \S+, go\d[^,]*, \w+/\w+\)\n$`).MatchString(r.stdout) {
			t.Errorf("apitosms %q: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
}

// -h, --help and help print the whole help on stdout and exit 0: every
// command, and every variable the configuration code reads, with its
// default. The list comes from the code (envVars), so it cannot drift; this
// also fails when a variable has no help line or a help line names a
// variable nothing reads.
func TestHelpListsCommandsAndEveryVariable(t *testing.T) {
	vars := envVars()
	var keys []string
	for _, v := range vars {
		keys = append(keys, v.Key)
		if config.Meaning(v.Key) == "" {
			t.Errorf("%s is read but has no help line in libs/config/help.go", v.Key)
		}
	}
	for _, k := range config.Described() {
		if !slices.Contains(keys, k) {
			t.Errorf("libs/config/help.go describes %s, which nothing reads", k)
		}
	}
	if len(vars) < 30 {
		t.Fatalf("only %d variables found: %q", len(vars), keys)
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"serve", "-help"}} {
		r := runBinary(t, nil, args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("apitosms %q: exit %d, stderr %q", args, r.code, r.stderr)
		}
		for _, c := range commandNames() {
			if !regexp.MustCompile(`(?m)^  ` + c + ` `).MatchString(r.stdout) {
				t.Errorf("apitosms %q: command %s not listed", args, c)
			}
		}
		for _, v := range vars {
			line := "  " + v.Key + " (unset by default)"
			if v.Default != "" {
				line = "  " + v.Key + " (default " + v.Default + ")"
			}
			if !strings.Contains(r.stdout, line+"\n      "+config.Meaning(v.Key)+"\n") {
				t.Errorf("apitosms %q: no line %q with its meaning", args, line)
			}
		}
		if !strings.Contains(r.stdout, "-target") || !strings.Contains(r.stdout, "Exit status") {
			t.Errorf("apitosms %q: help without the serve flags or exit codes:\n%s", args, r.stdout)
		}
	}
	// A command's help is its flags.
	r := runBinary(t, nil, "help", "phone")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage: apitosms phone") || !strings.Contains(r.stdout, "-token") {
		t.Errorf("help phone: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// A command line that cannot be run exits 2 at once, saying why, and
// starts nothing (no data dir appears).
func TestUsageErrorsExit2(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	env := []string{"APITOSMS_DATA_DIR=" + dir, "APITOSMS_HTTP_ADDR=127.0.0.1:0"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serverr"}, `unknown command "serverr"`},
		{[]string{"start"}, `unknown command "start"`},
		{[]string{"-port=80"}, "flag provided but not defined: -port"},
		{[]string{"-target=all", "extra"}, `unexpected argument "extra"`},
		{[]string{"serve", "now"}, `unexpected argument "now"`},
		{[]string{"-target=billing,smtp"}, `unknown target "smtp"`},
		{[]string{"version", "x"}, "version takes no arguments"},
		{[]string{"help", "nope"}, `unknown command "nope"`},
		{[]string{"phone"}, "-token is required"},
		{[]string{"bench", "-duration=soon"}, "invalid value"},
	} {
		r := runBinary(t, env, tc.args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "apitosms: ") || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("apitosms %q: exit %d, stderr %q; want exit 2 saying %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused command line touched the data dir: %v", err)
	}
}

// A malformed setting is refused at once (exit 2) with an error naming the
// variable; a credential in a malformed URL is never echoed.
func TestBadSettingsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	base := []string{"APITOSMS_DATA_DIR=" + dir, "APITOSMS_HTTP_ADDR=127.0.0.1:0"}
	for _, tc := range []struct {
		env  string
		want string
	}{
		{"APITOSMS_LOG_LEVEL=verbose", `APITOSMS_LOG_LEVEL: "verbose" is not one of debug, info, warn, error`},
		{"APITOSMS_SHUTDOWN_TIMEOUT=20", "APITOSMS_SHUTDOWN_TIMEOUT: \"20\" is not a duration"},
		{"APITOSMS_QUEUE_INGEST_LINGER=-1ms", "APITOSMS_QUEUE_INGEST_LINGER: -1ms: want a positive duration"},
		{"APITOSMS_INGRESS_MAX_BATCH=0", "APITOSMS_INGRESS_MAX_BATCH: 0: want a positive integer"},
		{"APITOSMS_RELEASES_MAX_APK_BYTES=200MB", `APITOSMS_RELEASES_MAX_APK_BYTES: "200MB" is not an integer`},
		{"APITOSMS_STREAM_REPLICAS=9", "APITOSMS_STREAM_REPLICAS: 9 is out of range"},
		{"APITOSMS_NATS_URL=nats://admin:Sup3rSecretPw@nats.internal:4222:1", "APITOSMS_NATS_URL: entry 1 (nats://admin:xxxxx@nats.internal:4222:1): bad port"},
		{"APITOSMS_NATS_URL=nats://admin:Sup3r SecretPw@[nats", "APITOSMS_NATS_URL: entry 1 is not a NATS URL"},
		{"APITOSMS_DATABASE_URL=mysql://root:Sup3rSecretPw@db/sms", "APITOSMS_DATABASE_URL: mysql://root:xxxxx@db/sms: must start with postgres://"},
	} {
		r := runBinary(t, append(slices.Clone(base), tc.env), "-target=all")
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 saying %q", tc.env, r.code, r.stderr, tc.want)
		}
		if strings.Contains(r.stderr, "Sup3r") {
			t.Errorf("%s: the password reached the output: %q", tc.env, r.stderr)
		}
	}
	// Several problems are reported together.
	r := runBinary(t, append(slices.Clone(base), "APITOSMS_LOG_LEVEL=loud", "APITOSMS_SHUTDOWN_TIMEOUT=x"))
	if r.code != 2 || !strings.Contains(r.stderr, "APITOSMS_LOG_LEVEL") || !strings.Contains(r.stderr, "APITOSMS_SHUTDOWN_TIMEOUT") {
		t.Errorf("two bad settings: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused configuration touched the data dir: %v", err)
	}
}

// A well-formed broker URL whose server cannot be reached fails the start
// (exit 1) without its password in the error or any log line.
func TestUnreachableBrokerPasswordRedacted(t *testing.T) {
	ln := freeAddr(t) // nothing listens there
	r := runBinary(t, []string{
		"APITOSMS_DATA_DIR=" + filepath.Join(t.TempDir(), "data"), "APITOSMS_HTTP_ADDR=127.0.0.1:0",
		"APITOSMS_NATS_URL=nats://admin:Sup3rSecretPw@" + ln,
		"APITOSMS_DATABASE_URL=postgres://app:An0therSecret@127.0.0.1:1/sms",
		"APITOSMS_ADMIN_TOKEN=admin-T0ken-value", "APITOSMS_LOG_LEVEL=debug",
	}, "-target=ingress")
	if r.code != 1 || !strings.Contains(r.stderr, "apitosms: ") {
		t.Fatalf("exit %d, stderr %q; want exit 1 with an error", r.code, r.stderr)
	}
	for _, secret := range []string{"Sup3rSecretPw", "An0therSecret", "admin-T0ken-value"} {
		if strings.Contains(r.stderr, secret) {
			t.Errorf("secret %q in the output: %s", secret, r.stderr)
		}
	}
}

// The data dir is locked: a second server on a data dir in use fails at
// once, naming the dir and the pid of the process holding it.
func TestDataDirLocked(t *testing.T) {
	b := testkit.Backend{DataDir: t.TempDir(), Namespace: testkit.Namespace()}
	first := startOS(t, b, freeAddr(t)) // embedded NATS + SQLite: owns the dir
	abs, _ := filepath.Abs(b.DataDir)

	env := []string{"APITOSMS_DATA_DIR=" + b.DataDir, "APITOSMS_HTTP_ADDR=" + freeAddr(t), "APITOSMS_ADMIN_TOKEN=" + adminToken}
	r := runBinary(t, env)
	pid := strconv.Itoa(first.cmd.Process.Pid)
	if r.code != 1 || !strings.Contains(r.stderr, "data dir "+abs+" is in use by another apitosms process (pid "+pid+")") {
		t.Fatalf("second server: exit %d after %v, stderr %q; want exit 1 naming %s and pid %s", r.code, r.took, r.stderr, abs, pid)
	}
	if r.took > 10*time.Second {
		t.Errorf("second server took %v to fail", r.took)
	}
	// A process using only the SQLite files there is refused as well.
	r = runBinary(t, append(env, "APITOSMS_NATS_URL=nats://127.0.0.1:1"), "-target=billing")
	if r.code != 1 || !strings.Contains(r.stderr, "is in use by another apitosms process") {
		t.Errorf("SQLite-only process beside the owner: exit %d, stderr %q", r.code, r.stderr)
	}
	// The first one is unharmed.
	if got := do(t, "GET", first.base+"/readyz", nil); got.status != 200 {
		t.Errorf("first server after the refused start: readyz %d %s", got.status, got.body)
	}
	// Once it is gone (even killed), the dir is free again: the kernel
	// releases the lock with the process.
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()
	startOS(t, b, freeAddr(t))
}

// An unusable data dir fails the start at once (well under 2 s), naming
// the path and the cause. Tests run as root, which ignores permissions, so
// the dir is placed under a regular file.
func TestUnwritableDataDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "data")
	for _, env := range [][]string{
		{"APITOSMS_DATA_DIR=" + dir},
		// SQLite alone (external broker) checks it too, before connecting.
		{"APITOSMS_DATA_DIR=" + dir, "APITOSMS_NATS_URL=nats://127.0.0.1:1"},
	} {
		r := runBinary(t, append(env, "APITOSMS_HTTP_ADDR=127.0.0.1:0"))
		if r.code != 1 || !strings.Contains(r.stderr, "data dir "+dir+" is not usable") || !strings.Contains(r.stderr, "not a directory") {
			t.Errorf("%q: exit %d, stderr %q; want exit 1 naming %s and the cause", env, r.code, r.stderr, dir)
		}
		if r.took > 2*time.Second {
			t.Errorf("%q: took %v to fail, want < 2s", env, r.took)
		}
	}
}
