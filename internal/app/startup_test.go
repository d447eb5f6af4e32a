package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// startupBound is how long five processes starting together may take to be
// ready. Before, all but one waited on JetStream requests the cluster left
// unanswered until their 60 s start timeout, and exited.
const startupBound = 20 * time.Second

// Five processes started at the same instant against a fresh namespace
// (as Kubernetes starts a deployment's replicas) all become ready, and agree
// on everything they create at start: a message queued through one is
// handed out by another and reported through a third (one hash key).
//
// embedded-sqlite: five Runs in this process on one NATS server.
// cluster-r3: five Runs on a three-node cluster with streams and buckets
// replicated three times, where the hang was.
// external-postgres: five real OS processes on the external NATS server
// and PostgreSQL.
func TestConcurrentStartup(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		if b.External {
			agree(t, startOSTogether(t, b, 5))
			return
		}
		agree(t, startTogether(t, b, nil, 5))
	})
	t.Run("cluster-r3", func(t *testing.T) {
		c := testkit.StartCluster(t, 3)
		agree(t, startTogether(t, clusterBackend(t, c), map[string]string{"APITOSMS_STREAM_REPLICAS": "3"}, 5))
	})
}

// clusterBackend is a backend on cluster c with SQLite in a temporary dir.
func clusterBackend(t *testing.T, c *testkit.Cluster) testkit.Backend {
	t.Helper()
	ns := testkit.Namespace()
	return testkit.Backend{Name: "cluster", NATSURL: c.URL(), DataDir: t.TempDir(), Namespace: ns, Names: events.NewNames(ns)}
}

// startTogether runs n all-in-one Runs in this process, released at the
// same instant, and returns their base URLs once all are ready.
func startTogether(t *testing.T, b testkit.Backend, env map[string]string, n int) []string {
	t.Helper()
	e := map[string]string{"APITOSMS_ADMIN_TOKEN": adminToken}
	for k, v := range env {
		e[k] = v
	}
	gate := make(chan struct{})
	bases := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		ctx, cancel := context.WithCancel(context.Background())
		p := &proc{cancel: cancel, done: make(chan error, 1)}
		t.Cleanup(func() { p.stop(t) })
		ready := make(chan string, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			go func() {
				p.done <- Run(ctx, Runtime{Getenv: b.Env(e), Stdout: io.Discard, Stderr: logWriter{t},
					OnReady: func(addr string) { ready <- addr }})
			}()
			select {
			case addr := <-ready:
				bases[i] = "http://" + addr
			case err := <-p.done:
				p.done <- err // for stop
				errs <- fmt.Errorf("process %d exited at start: %w", i, err)
			case <-time.After(startupBound):
				errs <- fmt.Errorf("process %d not ready after %v", i, startupBound)
			}
		}()
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d processes ready %v after starting together", n, time.Since(start).Round(time.Millisecond))
	return bases
}

// startOSTogether starts n apitosms OS processes at the same instant and
// returns their base URLs once each answers /readyz.
func startOSTogether(t *testing.T, b testkit.Backend, n int) []string {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	cmds := make([]*exec.Cmd, n)
	bases := make([]string, n)
	for i := range cmds {
		addr := freeAddr(t)
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(),
			"APITOSMS_HTTP_ADDR="+addr,
			"APITOSMS_DATA_DIR="+fmt.Sprintf("%s/p%d", b.DataDir, i),
			"APITOSMS_NAMESPACE="+b.Namespace,
			"APITOSMS_ADMIN_TOKEN="+adminToken,
			"APITOSMS_LOG_LEVEL=warn",
			"APITOSMS_NATS_URL="+b.NATSURL,
			"APITOSMS_DATABASE_URL="+b.DatabaseURL,
		)
		cmd.Stderr = logWriter{t}
		cmds[i], bases[i] = cmd, "http://"+addr
	}
	start := time.Now()
	exited := make(chan int, n)
	for i, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(waited); exited <- i }()
		t.Cleanup(func() { _ = cmd.Process.Kill(); <-waited })
	}
	deadline := time.Now().Add(startupBound)
	for i, base := range bases {
		// Other processes: their /readyz is what says they are ready.
		testkit.EventuallyEvery(t, time.Until(deadline), 20*time.Millisecond, fmt.Sprintf("process %d ready", i), func() bool {
			select {
			case j := <-exited:
				t.Fatalf("process %d exited at start: %v", j, cmds[j].ProcessState)
			default:
			}
			r, err := send("GET", base+"/readyz", nil)
			return err == nil && r.status == 200
		})
	}
	t.Logf("%d OS processes ready %v after starting together", n, time.Since(start).Round(time.Millisecond))
	return bases
}

// agree checks the processes share one deployment: for each, a message
// queued through it is handed out through the next one and reported
// through the one after (same hash key, same streams and durables).
func agree(t *testing.T, bases []string) {
	t.Helper()
	n := len(bases)
	_, tok := account(t, bases[0], 1000, 10000)
	for i := range n {
		q := do(t, "POST", bases[i]+"/api/"+tok+"/queue", items(fmt.Sprintf("p%d", i), 1))
		if q.status != 200 {
			t.Fatalf("queue on %d: %d %s", i, q.status, q.body)
		}
		hash := q.json(t)["items"].([]any)[0].(map[string]any)["hash"].(string)
		got := do(t, "GET", bases[(i+1)%n]+"/api/"+tok+"/get_messages", nil)
		if got.status != 200 {
			t.Fatalf("get_messages on %d: %d %s", (i+1)%n, got.status, got.body)
		}
		list := got.list(t)
		if len(list) != 1 || list[0]["hash"] != hash {
			t.Fatalf("queued %s on process %d, process %d handed out %v", hash, i, (i+1)%n, list)
		}
		rep := do(t, "POST", bases[(i+2)%n]+"/api/"+tok+"/status",
			map[string]any{"messages": []map[string]any{{"hash": hash, "status": 2}}})
		if rep.status != 200 || rep.json(t)["updated"] != float64(1) {
			t.Fatalf("report on %d of %s: %d %s", (i+2)%n, hash, rep.status, rep.body)
		}
	}
}
