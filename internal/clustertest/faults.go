package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
)

// fault is one kill and restart, and what it cost.
type fault struct {
	what            string
	killed, started time.Time // SIGKILL sent; restarted process ready
	until           time.Time // end of this fault's phase (next fault or end of load)
}

// runFaults kills and restarts, in turn, the NATS node leading the accepted
// stream, ingress-1 and queue-1, with load running throughout.
func runFaults(ctx context.Context, e env, s settings, l *load) ([]*fault, error) {
	script := e["CLUSTER_SCRIPT"]
	monitors, procs := e.urls("CLUSTER_NATS_MONITORS"), e.urls("CLUSTER_PROCESS_URLS")
	if err := sleepCtx(ctx, s.warmup); err != nil {
		return nil, err
	}
	if l.acked() == 0 {
		return nil, fmt.Errorf("nothing acknowledged after the %s warm-up: is the cluster healthy?", s.warmup)
	}
	leader, err := streamLeader(ctx, e["CLUSTER_NATS_URL"], events.NewNames("").AcceptedStream())
	if err != nil {
		return nil, err
	}
	plan := []struct{ proc, what, ready string }{
		{"nats-" + leader, "NATS node " + leader + " (leader of the accepted stream)", monitors["nats-"+leader] + "/healthz"},
		{"ingress-1", "ingress replica ingress-1", procs["ingress-1"] + "/readyz"},
		{"queue-1", "queue replica queue-1", procs["queue-1"] + "/readyz"},
	}
	var faults []*fault
	for _, p := range plan {
		f := &fault{what: p.what}
		fmt.Printf("fault: SIGKILL %s\n", p.proc)
		f.killed = time.Now()
		if out, err := exec.CommandContext(ctx, script, "kill", p.proc).CombinedOutput(); err != nil {
			return faults, fmt.Errorf("kill %s: %w %s", p.proc, err, out)
		}
		if len(faults) > 0 {
			faults[len(faults)-1].until = f.killed
		}
		faults = append(faults, f)
		if err := sleepCtx(ctx, s.down); err != nil {
			return faults, err
		}
		if out, err := exec.CommandContext(ctx, script, "start", p.proc).CombinedOutput(); err != nil {
			return faults, fmt.Errorf("restart %s: %w %s", p.proc, err, out)
		}
		if err := waitOK(ctx, p.ready, 2*time.Minute); err != nil {
			return faults, fmt.Errorf("%s after restart: %w", p.proc, err)
		}
		f.started = time.Now()
		fmt.Printf("fault: %s back and ready %s after the kill\n", p.proc, f.started.Sub(f.killed).Round(100*time.Millisecond))
		if err := sleepCtx(ctx, s.settle); err != nil {
			return faults, err
		}
	}
	faults[len(faults)-1].until = time.Now()
	return faults, nil
}

// streamLeader names the NATS server leading stream.
func streamLeader(ctx context.Context, url, stream string) (string, error) {
	nc, err := nats.Connect(url, nats.Name("cluster-test"))
	if err != nil {
		return "", err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", err
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return "", fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", fmt.Errorf("stream %s has no leader", stream)
	}
	if info.Config.Replicas != 3 {
		return "", fmt.Errorf("stream %s has %d replicas, want 3", stream, info.Config.Replicas)
	}
	return strings.TrimSpace(info.Cluster.Leader), nil
}

func waitOK(ctx context.Context, url string, limit time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s not OK within %s", url, limit)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// window is what one fault cost the clients.
type window struct {
	failures      int
	codes         map[int]int   // failures by status (0: no answer)
	first, last   time.Time     // first and last failed request in the phase
	recovery      time.Duration // kill -> first success after the last failure
	unavailable   time.Duration // last - first
	requestsTotal int
}

func (f *fault) window(evs []event) window {
	w := window{codes: map[int]int{}}
	for _, e := range evs {
		if e.at.Before(f.killed) || !e.at.Before(f.until) {
			continue
		}
		w.requestsTotal++
		if e.failed() {
			w.failures++
			w.codes[e.code]++
			if w.first.IsZero() {
				w.first = e.at
			}
			w.last = e.at
		}
	}
	if w.failures > 0 {
		w.unavailable = w.last.Sub(w.first)
		for _, e := range evs {
			if e.at.After(w.last) && !e.failed() {
				w.recovery = e.at.Sub(f.killed)
				break
			}
		}
	}
	return w
}

func report(faults []*fault, l *load) {
	evs := l.tl.snapshot()
	fmt.Println()
	fmt.Println("| fault | requests in phase | 5xx / no answer | 5xx window (first to last failure) | recovery (kill to first success after the last failure) | restarted process ready after |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, f := range faults {
		w := f.window(evs)
		win, rec := "none", "no failures"
		if w.failures > 0 {
			win = w.unavailable.Round(10 * time.Millisecond).String()
			rec = w.recovery.Round(10 * time.Millisecond).String()
		}
		fmt.Printf("| %s | %d | %d%s | %s | %s | %s |\n", f.what, w.requestsTotal, w.failures, codeList(w.codes), win, rec, f.started.Sub(f.killed).Round(100*time.Millisecond))
	}
	fmt.Println()
}

// codeList writes failures by status: " (503: 4, no answer: 1)".
func codeList(codes map[int]int) string {
	if len(codes) == 0 {
		return ""
	}
	keys := make([]int, 0, len(codes))
	for c := range codes {
		keys = append(keys, c)
	}
	sort.Ints(keys)
	parts := make([]string, len(keys))
	for i, c := range keys {
		name := fmt.Sprint(c)
		if c == 0 {
			name = "no answer"
		}
		parts[i] = fmt.Sprintf("%s: %d", name, codes[c])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
