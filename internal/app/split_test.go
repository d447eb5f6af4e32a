package app

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
)

// topologies are the two ways the contract suite runs the server: one
// process with every service, and every service as its own -target=
// process behind the deployment's Caddyfile.
var topologies = []struct {
	name  string
	start func(*testing.T, testkit.Backend, map[string]string) *proc
}{
	{"all-in-one", allInOne},
	{"split-behind-caddy", behindCaddy},
}

// behindCaddy runs every service as its own -target= process (each with its
// own NATS connection, database and HTTP listener) and the repository's
// deployments/Caddyfile in front of them, routing as a deployment does; the
// returned proc's base is Caddy's address. Without caddy on the PATH
// (.ci/run installs it) the test is skipped, saying so.
func behindCaddy(t *testing.T, b testkit.Backend, env map[string]string) *proc {
	t.Helper()
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("caddy is not installed (.ci/run installs it): the split topology behind the Caddyfile is not run")
	}
	proxyEnv := []string{}
	for _, target := range targetNames() {
		p := start(t, b, env, "-target="+target)
		proxyEnv = append(proxyEnv, strings.ToUpper(target)+"_UPSTREAMS="+strings.TrimPrefix(p.base, "http://"))
	}
	addr := freeAddr(t)
	dir := t.TempDir()
	cmd := exec.Command(caddy, "run", "--config", filepath.Join("..", "..", "deployments", "Caddyfile"), "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), append(proxyEnv, "APITOSMS_PROXY_ADDR="+addr, "CADDY_ADMIN="+freeAddr(t),
		"XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir, "HOME="+dir)...)
	logFile, err := os.Create(filepath.Join(dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start caddy: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			if log, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("caddy's log:\n%s", log)
			}
		}
		_ = logFile.Close()
	})
	base := "http://" + addr
	testkit.Eventually(t, 30*time.Second, "caddy answering /readyz through ingress", func() bool {
		select {
		case <-exited:
			t.Fatalf("caddy exited at start; its log is in %s", logFile.Name())
		default:
		}
		r, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		_ = r.Body.Close()
		return r.StatusCode == http.StatusOK
	})
	return &proc{base: base}
}
