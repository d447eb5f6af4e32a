// Package loadgen drives a running apitosms server the way its users do:
// merchants queueing batches through their own accounts and phones pulling
// and reporting (internal/phonesim), and measures throughput, latency per
// endpoint, queue→phone latency, errors, and the server's CPU and memory.
//
// The generator is built to cost little next to the server it measures on
// the same machine: request bodies are precomputed (only the enqueue stamps
// are rewritten), buffers are reused, responses are scanned rather than
// decoded, connections are kept alive, and latencies go into fixed-size
// per-goroutine histograms.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apitosms/apitosms/internal/phonesim"
)

// Modes of a run.
const (
	ModeIngest = "ingest" // merchants only
	ModeDrain  = "drain"  // prefill, then phones only
	ModeMixed  = "mixed"  // merchants and phones together
	// ModeLookup (hooks.go): prefill, then bulk lookups.
	// ModeStores (stores.go): signed shop deliveries, each a new order.
)

// Config describes one run.
type Config struct {
	Scenario string // label in the table
	Mode     string // ModeIngest, ModeDrain or ModeMixed

	// The server: a running one (URL, AdminToken, optionally PID for its
	// CPU and memory), or Spawn to start one for this run only.
	URL        string
	AdminToken string
	PID        int
	Spawn      *SpawnConfig

	Merchants int // queueing clients, each with its own account
	Batch     int // messages per queue request
	Phones    int // polling phones, spread over the merchants' accounts
	Limit     int // get_messages limit
	Senders   int // stores mode: concurrent senders of shop deliveries, over the merchants' stores

	// Duration is the measured window (ingest, mixed) or its cap (drain).
	Duration time.Duration
	// Messages stops merchants once this many were accepted in the window
	// (ingest, mixed); in drain mode it is the default of Prefill.
	Messages int64
	// Prefill queues this many messages before the window, in any mode
	// (drain: default Messages, else 200,000), e.g. to measure ingest with
	// millions waiting. Its figures are reported apart.
	Prefill int64
	// SettleTimeout bounds the wait, after the prefill, until the server has
	// stored it (its consumers' lag gauges read 0); default 30 minutes.
	SettleTimeout time.Duration

	// Shares of queued items with contract §12 fields: Scheduled get a
	// sendAt 29 days ahead (never due during the run), High "priority":"high".
	Scheduled float64
	High      float64

	Success float64       // share of messages phones report sent (2); others failed (3)
	Delay   time.Duration // phones' simulated sending time per message
	Idle    time.Duration // phones' wait after an empty poll in mixed mode (default 20 ms)
	// PollEvery paces the phones like SIM-bound ones: each starts a poll
	// at most once per PollEvery (their first polls spread over one
	// interval), so the offered load is Phones × Limit / PollEvery SMS/s
	// and get_messages latency is the server's, not the queue of phones
	// waiting (closed loop, PollEvery 0: a phone polls again as soon as its
	// report is answered, which measures saturation).
	PollEvery time.Duration
	// Verify tracks every hash and checks, after the run, that each accepted
	// message was pulled exactly once and reported, and that nothing is left.
	Verify bool
	// Webhooks gives every merchant account a "batch": true webhook endpoint
	// on a receiver in this process (the server needs
	// APITOSMS_WEBHOOK_ALLOW_PRIVATE=true) and reports the events it got;
	// after the window the run waits for the rest (up to HookWait without
	// progress, default 60 s).
	Webhooks bool
	HookWait time.Duration
	// Watch names processes (by /proc/<pid>/comm) whose CPU time over the
	// window is reported as infrastructure, e.g. nats-server and postgres
	// in the distributed mode. A spawned distributed server watches those
	// two unless Watch is set.
	Watch []string

	Log io.Writer // progress lines; nil discards
}

func (c *Config) defaults() error {
	switch c.Mode {
	case ModeIngest, ModeDrain, ModeMixed, ModeLookup, ModeStores:
	case "":
		c.Mode = ModeMixed
	default:
		return fmt.Errorf("unknown mode %q (want ingest, drain, mixed, lookup or stores)", c.Mode)
	}
	if c.SettleTimeout <= 0 {
		c.SettleTimeout = 30 * time.Minute
	}
	if c.Merchants < 1 {
		return errors.New("need at least one merchant (accounts are created per merchant)")
	}
	if c.Batch < 1 || c.Batch > 1000 {
		return errors.New("batch must be 1..1000")
	}
	if c.Scheduled < 0 || c.Scheduled > 1 || c.High < 0 || c.High > 1 {
		return errors.New("the scheduled and high shares must be 0..1")
	}
	if c.Mode != ModeIngest && c.Mode != ModeStores && c.Phones < 1 {
		return fmt.Errorf("mode %s needs phones", c.Mode)
	}
	if c.Mode == ModeIngest || c.Mode == ModeLookup || c.Mode == ModeStores {
		c.Phones = 0
	}
	if c.Mode != ModeStores {
		c.Senders = 0
	} else if c.Duration <= 0 || c.Senders < 1 || c.Prefill > 0 {
		return errors.New("stores mode needs a duration and at least one sender, and takes no prefill")
	}
	if c.HookWait <= 0 {
		c.HookWait = 60 * time.Second
	}
	if c.Limit < 1 {
		c.Limit = 200
	}
	if (c.Mode == ModeDrain || c.Mode == ModeLookup) && c.Prefill <= 0 {
		c.Prefill = c.Messages
		if c.Prefill <= 0 {
			c.Prefill = 200_000
		}
		c.Messages = 0
	}
	if c.Mode == ModeLookup && c.Duration <= 0 {
		return errors.New("lookup mode needs a duration")
	}
	if c.Mode != ModeDrain && c.Mode != ModeLookup && c.Duration <= 0 && c.Messages <= 0 {
		return errors.New("give a duration or a message count")
	}
	if c.Mode == ModeMixed && c.Duration <= 0 {
		return errors.New("mixed mode needs a duration")
	}
	if c.Idle <= 0 {
		c.Idle = 20 * time.Millisecond
	}
	if c.PollEvery < 0 {
		return errors.New("poll-every must not be negative")
	}
	if c.Spawn == nil && (c.URL == "" || c.AdminToken == "") {
		return errors.New("give the server's URL and admin token, or spawn one")
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

// Run performs one run and returns what it measured. Errors are returned
// only when the run could not be made (server, accounts); failed requests
// are counted in the result.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	backend, namespace := "external", ""
	if cfg.Spawn != nil {
		fmt.Fprintf(cfg.Log, "starting %s ...\n", cfg.Spawn.Bin)
		srv, serr := Spawn(ctx, *cfg.Spawn)
		if serr != nil {
			return nil, serr
		}
		defer func() {
			// A server that does not stop cleanly is a finding of the run,
			// not a reason to lose its figures.
			if serr := srv.Stop(); serr != nil {
				if res == nil {
					err = errors.Join(err, serr)
					return
				}
				res.ServerStop = summarize(serr.Error())
				res.ErrorTotal++
				fmt.Fprintf(cfg.Log, "server stop: %v\n", serr)
			}
		}()
		cfg.URL, cfg.AdminToken, cfg.PID, backend, namespace = srv.URL, srv.AdminToken, srv.PID, srv.Backend, srv.Namespace
		if cfg.Watch == nil && srv.Backend == "distributed" {
			cfg.Watch = []string{"nats-server", "postgres"}
		}
		fmt.Fprintf(cfg.Log, "server %s (%s, pid %d, namespace %s)\n", srv.URL, srv.Backend, srv.PID, srv.Namespace)
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	client := phonesim.NewClient(cfg.Merchants + cfg.Phones + cfg.Senders)
	defer client.CloseIdleConnections()
	tokens, err := CreateAccounts(ctx, client, cfg.URL, cfg.AdminToken, cfg.Merchants)
	if err != nil {
		return nil, fmt.Errorf("create bench accounts: %w", err)
	}
	r := &run{cfg: cfg, client: client, tokens: tokens}
	res = &Result{Scenario: cfg.Scenario, Backend: backend, Namespace: namespace, Mode: cfg.Mode, Merchants: cfg.Merchants,
		Batch: cfg.Batch, Phones: cfg.Phones, Limit: cfg.Limit, PollEveryMs: float64(cfg.PollEvery) / 1e6, Senders: cfg.Senders, ScheduledShare: cfg.Scheduled, HighShare: cfg.High}
	if err := r.execute(ctx, res); err != nil {
		return nil, err
	}
	return res, nil
}

// run is the state of one Run.
type run struct {
	cfg       Config
	client    *http.Client
	tokens    []string
	merchants []*merchant
	phones    []*phoneWorker
	hooks     *hookReceiver        // with Webhooks
	lookups   []*lookupWorker      // lookup mode
	senders   []*storeSender       // stores mode
	stores    *Stores              // stores mode: its figures, after the window
	storesErr error                // stores mode: reading the server's queued count failed
	dues      map[string]*tokenDue // by token: what a drain waits for
	// base is what the prefill accepted, excluded from the window's figures.
	base struct{ accepted, requests int64 }
}

func (r *run) execute(ctx context.Context, res *Result) error {
	cfg := r.cfg
	for i, tok := range r.tokens {
		r.merchants = append(r.merchants, newMerchant(i, r.client, cfg.URL, tok, cfg.Batch, cfg.Verify || cfg.Mode == ModeLookup, extras{cfg.Scheduled, cfg.High}))
	}
	if cfg.Webhooks {
		h, err := newHookReceiver()
		if err != nil {
			return err
		}
		defer h.close()
		if err := registerHooks(ctx, r.client, cfg.URL, r.tokens, h); err != nil {
			return err
		}
		r.hooks = h
	}
	settings := phoneSettings{limit: cfg.Limit, success: cfg.Success, delay: cfg.Delay, idle: cfg.Idle, verify: cfg.Verify, every: cfg.PollEvery}
	r.dues = map[string]*tokenDue{}
	for _, tok := range r.tokens {
		r.dues[tok] = &tokenDue{}
	}
	for i, toks := range spread(r.tokens, cfg.Phones) {
		r.phones = append(r.phones, newPhoneWorker(i, r.client, cfg.URL, toks, r.dues, settings))
	}

	if cfg.Prefill > 0 {
		if err := r.prefill(ctx, res); err != nil {
			return err
		}
	}
	if cfg.Mode == ModeLookup {
		for i, m := range r.merchants {
			r.lookups = append(r.lookups, newLookupWorker(r.client, cfg.URL, r.tokens[i], m.hashes))
		}
	}
	if cfg.Mode == ModeStores {
		stores, err := connectStores(ctx, r.client, cfg.URL, r.tokens)
		if err != nil {
			return err
		}
		next := new(atomic.Int64)
		next.Store(1_000_000) // ids of 7 digits and more, one a delivery
		for range cfg.Senders {
			r.senders = append(r.senders, &storeSender{client: r.client, stores: stores, next: next, errs: errorCounts{}})
		}
	}
	hooksBefore := int64(0)
	if r.hooks != nil {
		hooksBefore = r.hooks.events.Load()
	}

	before, serverErr := r.sample()
	toolBefore, _ := ReadProc(os.Getpid())
	infraBefore := cpuByName(cfg.Watch)
	cpuStallBefore, cpuOK := pressureTotal("cpu")
	ioStallBefore, ioOK := pressureTotal("io")
	stop := make(chan struct{})
	var timer *time.Timer
	if cfg.Duration > 0 {
		timer = time.AfterFunc(cfg.Duration, func() { close(stop) })
	}
	fmt.Fprintf(cfg.Log, "measuring %s ...\n", cfg.Mode)
	start := time.Now()
	var wg sync.WaitGroup
	if cfg.Mode == ModeLookup {
		wg.Add(1)
		go func() { defer wg.Done(); r.runLookups(ctx, stop) }()
	} else if cfg.Mode == ModeStores {
		wg.Add(1)
		go func() { defer wg.Done(); r.runStores(ctx, stop) }()
	} else if cfg.Mode != ModeDrain {
		quota := int64(0)
		if cfg.Messages > 0 {
			quota = r.base.accepted + cfg.Messages
		}
		wg.Add(1)
		go func() { defer wg.Done(); r.runMerchants(ctx, stop, quota) }()
	}
	if cfg.Phones > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); r.runPhones(ctx, stop, cfg.Mode == ModeDrain) }()
	}
	wg.Wait()
	window := time.Since(start)
	if timer != nil {
		timer.Stop()
	}
	hooksInWindow := int64(0)
	if r.hooks != nil {
		hooksInWindow = r.hooks.events.Load() - hooksBefore
	}
	after, _ := r.sample()
	toolAfter, _ := ReadProc(os.Getpid())
	infraAfter := cpuByName(cfg.Watch)
	cpuStallAfter, _ := pressureTotal("cpu")
	ioStallAfter, _ := pressureTotal("io")
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if r.storesErr != nil {
		return r.storesErr
	}

	r.fill(res, window)
	if r.hooks != nil {
		// Every message the server updated has its message.sent or
		// .failed event.
		r.awaitHooks(ctx, res, start, hooksInWindow, hooksBefore+res.Updated)
	}
	if cfg.Mode == ModeDrain || cfg.Mode == ModeLookup || cfg.Mode == ModeStores {
		// Nothing is queued through /queue in the window.
		res.AcceptedPerSec, res.QueueRequestsPerSec = 0, 0
	}
	secs := window.Seconds()
	res.Tool = Usage{PID: os.Getpid(), CPUSeconds: toolAfter.CPUSeconds - toolBefore.CPUSeconds, PeakRSSMiB: mib(toolAfter.PeakRSS)}
	res.Tool.Cores = res.Tool.CPUSeconds / secs
	if serverErr == nil && cfg.PID > 0 {
		res.Server = &Usage{PID: cfg.PID, CPUSeconds: after.CPUSeconds - before.CPUSeconds, PeakRSSMiB: mib(after.PeakRSS)}
		res.Server.Cores = res.Server.CPUSeconds / secs
	}
	if cpuOK && ioOK {
		res.Pressure = &Pressure{
			CPU: float64(cpuStallAfter-cpuStallBefore) / 1e6 / secs * 100,
			IO:  float64(ioStallAfter-ioStallBefore) / 1e6 / secs * 100,
		}
	}
	if len(cfg.Watch) > 0 {
		res.Infra = &Usage{Names: cfg.Watch, CPUSeconds: cpuDelta(infraBefore, infraAfter)}
		res.Infra.Cores = res.Infra.CPUSeconds / secs
	}
	if cfg.Verify {
		r.verify(ctx, res)
	}
	return nil
}

// runMerchants runs every merchant until stop, ctx's end, or until quota
// messages were accepted since the run began (0: no quota), shared out
// evenly.
func (r *run) runMerchants(ctx context.Context, stop <-chan struct{}, quota int64) {
	var wg sync.WaitGroup
	n := int64(len(r.merchants))
	for i, m := range r.merchants {
		target := int64(0)
		if quota > 0 {
			target = quota / n
			if int64(i) < quota%n {
				target++
			}
			if target <= m.accepted {
				continue
			}
		}
		wg.Add(1)
		go func() { defer wg.Done(); m.run(ctx, stop, target) }()
	}
	wg.Wait()
}

// prefill queues cfg.Prefill messages before the window and sets the
// baseline the window's figures start from.
func (r *run) prefill(ctx context.Context, res *Result) error {
	fmt.Fprintf(r.cfg.Log, "prefill: queueing %d messages ...\n", r.cfg.Prefill)
	start := time.Now()
	r.runMerchants(ctx, nil, r.cfg.Prefill)
	secs := time.Since(start).Seconds()
	accepted := r.accepted()
	var lat Histogram
	for _, m := range r.merchants {
		lat.Merge(&m.latency)
		m.latency = Histogram{}
		r.base.requests += m.requests
	}
	r.base.accepted = accepted
	var scheduled int64
	for _, m := range r.merchants {
		scheduled += m.scheduled
	}
	res.Prefill = &Prefill{Messages: accepted, Seconds: secs, PerSec: float64(accepted) / secs, QueueLatency: latencyOf(&lat), Scheduled: scheduled}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if accepted < r.cfg.Prefill {
		return fmt.Errorf("prefill: only %d of %d messages accepted (errors: %v)", accepted, r.cfg.Prefill, r.errors())
	}
	// The window measures a stored backlog, not the tail of its storing.
	fmt.Fprintf(r.cfg.Log, "prefill: waiting until the server has stored it ...\n")
	waited, err := settle(ctx, r.client, r.cfg.URL, r.cfg.SettleTimeout)
	if err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	res.Prefill.StoredSeconds = secs + waited.Seconds()
	return nil
}

func (r *run) runPhones(ctx context.Context, stop <-chan struct{}, untilEmpty bool) {
	if untilEmpty {
		// Each token is drained once its phones pulled what its merchant
		// had accepted, less what was scheduled for later.
		for i, m := range r.merchants {
			r.dues[r.tokens[i]].due.Store(m.accepted - m.scheduled)
		}
	}
	var wg sync.WaitGroup
	every := r.cfg.PollEvery
	for i, w := range r.phones {
		offset := every * time.Duration(i) / time.Duration(len(r.phones))
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx, stop, untilEmpty, r.cfg.Idle, every, offset) }()
	}
	wg.Wait()
}

// spread assigns tokens to n phone workers: with more phones than tokens
// several phones share a token, with fewer each phone serves several.
func spread(tokens []string, n int) [][]string {
	if n <= 0 {
		return nil
	}
	out := make([][]string, n)
	if n >= len(tokens) {
		for i := range out {
			out[i] = []string{tokens[i%len(tokens)]}
		}
		return out
	}
	for j, tok := range tokens {
		out[j%n] = append(out[j%n], tok)
	}
	return out
}

// fill sums the workers' counters into res.
func (r *run) fill(res *Result, window time.Duration) {
	var queueLat, getLat, statusLat, toPhone Histogram
	errs := r.errors()
	for _, m := range r.merchants {
		queueLat.Merge(&m.latency)
		res.QueueRequests += m.requests
	}
	res.QueueRequests -= r.base.requests
	res.Accepted = r.accepted() - r.base.accepted
	for _, w := range r.phones {
		getLat.Merge(&w.get)
		statusLat.Merge(&w.status)
		toPhone.Merge(&w.toPhone)
		s := w.stats()
		res.Pulled += s.Pulled
		res.Reported += s.Reported
		res.Updated += s.Updated
		res.Sent += s.Sent
		res.Failed += s.Failed
		if s.ReportErrors > 0 {
			errs.addN("status item", int(s.ReportErrors))
		}
	}
	var storeLat Histogram
	for _, w := range r.senders {
		storeLat.Merge(&w.latency)
		errs.merge(w.errs)
	}
	if s := r.stores; s != nil {
		res.Stores = s
		if s.Queued < s.Deliveries {
			errs.addN("orders not queued", int(s.Deliveries-s.Queued))
		}
	}
	var lookupLat Histogram
	if len(r.lookups) > 0 {
		lk := &Lookups{}
		for _, w := range r.lookups {
			lookupLat.Merge(&w.latency)
			lk.Lookups += w.lookups
			lk.Found += w.found
			errs.merge(w.errs)
		}
		lk.PerSec = float64(lk.Lookups) / window.Seconds()
		res.Lookups = lk
	}
	secs := window.Seconds()
	res.Seconds = secs
	res.AcceptedPerSec = float64(res.Accepted) / secs
	res.QueueRequestsPerSec = float64(res.QueueRequests) / secs
	res.PulledPerSec = float64(res.Pulled) / secs
	res.ReportedPerSec = float64(res.Reported) / secs
	res.Latency = map[string]Latency{}
	for name, h := range map[string]*Histogram{"queue": &queueLat, "get_messages": &getLat, "status": &statusLat, "queue_to_phone": &toPhone, "lookup": &lookupLat, "store_hook": &storeLat} {
		if h.Count() > 0 {
			res.Latency[name] = latencyOf(h)
		}
	}
	res.Errors = errs
	res.ErrorTotal = 0
	for _, v := range errs {
		res.ErrorTotal += v
	}
}

func (r *run) accepted() int64 {
	var n int64
	for _, m := range r.merchants {
		n += m.accepted
	}
	return n
}

func (r *run) errors() errorCounts {
	errs := errorCounts{}
	for _, m := range r.merchants {
		errs.merge(m.errs)
	}
	for _, w := range r.phones {
		errs.merge(w.errs)
	}
	return errs
}

func (r *run) sample() (ProcSample, error) {
	if r.cfg.PID <= 0 {
		return ProcSample{}, errors.New("no pid")
	}
	return ReadProc(r.cfg.PID)
}

// summarize keeps the first line of a stop error and the server's last
// log line (its own last word, e.g. "apitosms: shutdown timed out").
func summarize(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) == 1 {
		return lines[0]
	}
	last := lines[len(lines)-1]
	if len(last) > 120 {
		last = last[:120] + "…"
	}
	return lines[0] + ": " + last
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
