// Command clustertest is `make cluster-test`: against the cluster `make
// cluster` started (its .cluster/env), it drives merchants and phones
// through Caddy (internal/phonesim's phones) while it kills, then
// restarts, the NATS node leading the accepted stream, one ingress replica
// and one queue replica. It then checks that every acknowledged message was
// handed out exactly once and in FIFO order per merchant, reports each
// fault's 5xx window and recovery time, and queries every dashboard panel's
// and every alert's expression through the cluster's Prometheus, failing
// on any that does not parse or returns no series.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// settings of one run; -short is the CI version.
type settings struct {
	merchants int
	batch     int
	warmup    time.Duration // load before the first fault
	down      time.Duration // how long a killed process stays down
	settle    time.Duration // load between a restart and the next fault
	drain     time.Duration // bound on handing out the rest afterwards
}

func main() {
	envFile := flag.String("env", ".cluster/env", "the cluster's environment file (written by make cluster)")
	dashboard := flag.String("dashboard", "deployments/grafana/apitosms.json", "Grafana dashboard whose panel expressions are checked")
	alerts := flag.String("alerts", "deployments/prometheus/alerts.yml", "Prometheus rule file whose expressions are checked")
	short := flag.Bool("short", false, "the CI version: shorter phases")
	flag.Parse()

	s := settings{merchants: 4, batch: 20, warmup: 15 * time.Second, down: 8 * time.Second, settle: 15 * time.Second, drain: 3 * time.Minute}
	if *short {
		s = settings{merchants: 3, batch: 10, warmup: 6 * time.Second, down: 4 * time.Second, settle: 8 * time.Second, drain: 2 * time.Minute}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := readEnv(*envFile)
	if err == nil {
		err = run(ctx, env, s, *dashboard, *alerts)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster-test: FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("cluster-test: PASS")
}

// env is the cluster's environment file.
type env map[string]string

func readEnv(path string) (env, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w (run make cluster first)", err)
	}
	defer func() { _ = f.Close() }() // only read
	e := env{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			e[k] = strings.Trim(v, `"`)
		}
	}
	for _, k := range []string{"APITOSMS_URL", "APITOSMS_ADMIN_TOKEN", "PROMETHEUS_URL", "CLUSTER_NATS_URL", "CLUSTER_DATABASE_URL",
		"CLUSTER_SCRIPT", "CLUSTER_NATS_MONITORS", "CLUSTER_PROCESS_URLS"} {
		if e[k] == "" {
			return nil, fmt.Errorf("%s: %s missing", path, k)
		}
	}
	return e, sc.Err()
}

// urls parses "name=url name=url" lists of the env file.
func (e env) urls(key string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Fields(e[key]) {
		if k, v, ok := strings.Cut(f, "="); ok {
			out[k] = v
		}
	}
	return out
}

func run(ctx context.Context, e env, s settings, dashboard, alerts string) error {
	start := time.Now()
	l, err := newLoad(ctx, e, s)
	if err != nil {
		return err
	}
	fmt.Printf("load: %d merchants (batches of %d, Idempotency-Key, retried until answered 200) and one phone each, through %s\n",
		s.merchants, s.batch, e["APITOSMS_URL"])
	if err := exerciseExtras(ctx, l); err != nil {
		return fmt.Errorf("refusals and downloads: %w", err)
	}
	l.start(ctx)

	faults, ferr := runFaults(ctx, e, s, l)
	l.stopMerchants()
	fmt.Printf("merchants stopped: %d messages acknowledged in %d requests; draining\n", l.acked(), l.requests.Load())
	derr := l.drain(ctx, s.drain)
	l.stopPhones()
	if ferr != nil {
		return ferr
	}
	report(faults, l)
	verr := verify(ctx, e, l)
	if derr != nil && verr == nil {
		verr = derr
	}
	perr := checkQueries(ctx, e["PROMETHEUS_URL"], dashboard, alerts)
	fmt.Printf("took %s\n", time.Since(start).Round(time.Second))
	return errors.Join(verr, perr)
}
