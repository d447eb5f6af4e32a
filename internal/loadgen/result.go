package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Result is what one bench run measured. Rates are over the measured
// window (Seconds); CPU figures too; PeakRSS is the server's high-water
// mark over its whole life.
type Result struct {
	Scenario  string `json:"scenario"`
	Backend   string `json:"backend"`             // all-in-one, distributed, or external (a server given by URL)
	Namespace string `json:"namespace,omitempty"` // of a spawned server
	Mode      string `json:"mode"`
	Merchants int    `json:"merchants"`
	Batch     int    `json:"batch"`
	Phones    int    `json:"phones"`
	Limit     int    `json:"limit"`
	// PollEveryMs is the phones' pacing (Config.PollEvery); 0: closed loop.
	PollEveryMs float64 `json:"pollEveryMs,omitempty"`
	Senders     int     `json:"senders,omitempty"` // stores mode
	// Shares of queued items with contract §12 fields (-scheduled, -high).
	ScheduledShare float64 `json:"scheduledShare,omitempty"`
	HighShare      float64 `json:"highShare,omitempty"`

	Seconds       float64 `json:"seconds"`
	QueueRequests int64   `json:"queueRequests"`
	Accepted      int64   `json:"accepted"`
	Pulled        int64   `json:"pulled"`
	Reported      int64   `json:"reported"` // carried by status requests answered 200
	Updated       int64   `json:"updated"`  // the server's "updated" figures, summed
	Sent          int64   `json:"sent"`     // reported as 2
	Failed        int64   `json:"failed"`   // reported as 3

	AcceptedPerSec      float64 `json:"acceptedPerSec"`
	QueueRequestsPerSec float64 `json:"queueRequestsPerSec"`
	PulledPerSec        float64 `json:"pulledPerSec"`
	ReportedPerSec      float64 `json:"reportedPerSec"`

	// Latency per endpoint (queue, get_messages, status) of requests
	// answered 2xx, and queue_to_phone: enqueue to the get_messages response.
	Latency map[string]Latency `json:"latencyMs"`
	Errors  map[string]int64   `json:"errors"` // "<endpoint> <status>" (or "transport", "item")
	// ServerStop says how a spawned server failed to stop cleanly (SIGTERM
	// not honoured in time, non-zero exit, cleanup failure); empty if it did.
	ServerStop string `json:"serverStop,omitempty"`
	// ErrorTotal sums Errors, plus one for a ServerStop.
	ErrorTotal int64 `json:"errorTotal"`

	Prefill *Prefill `json:"prefill,omitempty"`
	Server  *Usage   `json:"server,omitempty"` // when the server's pid is known
	// Infra is the CPU of the watched infrastructure processes (NATS,
	// PostgreSQL) over the window, whoever made them work.
	Infra *Usage `json:"infra,omitempty"`
	Tool  Usage  `json:"tool"` // this process
	// Pressure is the machine's stall share over the window (Linux PSI), a
	// measure of how much everything on the box waited for CPU or disk.
	Pressure *Pressure `json:"pressure,omitempty"`

	// Webhooks: the events a local "batch": true endpoint received (runs
	// with Webhooks); Lookups: bulk lookups (lookup mode).
	Webhooks *Webhooks `json:"webhooks,omitempty"`
	Lookups  *Lookups  `json:"lookups,omitempty"`
	Stores   *Stores   `json:"stores,omitempty"` // stores mode

	Verified    *bool  `json:"verified,omitempty"`
	VerifyError string `json:"verifyError,omitempty"`
}

// Webhooks is what the bench's webhook receiver got. PerSec is Events
// over Seconds, from the window's start to the last event received (the
// deliveries that trail the window included); InWindowPerSec counts only
// those received within the window.
type Webhooks struct {
	Events         int64   `json:"events"`
	Expected       int64   `json:"expected"` // messages the server updated: one event each
	Posts          int64   `json:"posts"`
	InWindow       int64   `json:"inWindow"`
	Seconds        float64 `json:"seconds"`
	PerSec         float64 `json:"perSec"`
	InWindowPerSec float64 `json:"inWindowPerSec"`
}

// Lookups is the lookup mode's work: hashes asked (1000 a request) and
// found, per second of the window.
type Lookups struct {
	Lookups int64   `json:"lookups"`
	Found   int64   `json:"found"`
	PerSec  float64 `json:"perSec"`
}

// Latency quantiles in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
}

// Prefill is the drain mode's queue filling, before the measured window.
type Prefill struct {
	Messages     int64   `json:"messages"`
	Seconds      float64 `json:"seconds"`
	PerSec       float64 `json:"perSec"`
	QueueLatency Latency `json:"queueLatencyMs"`
	// StoredSeconds is from the prefill's start until the server had stored
	// all of it (every consumer caught up); the window starts then.
	StoredSeconds float64 `json:"storedSeconds"`
	// Scheduled of Messages have a sendAt after the run: they wait, never
	// due, and a drain hands out only the rest.
	Scheduled int64 `json:"scheduled,omitempty"`
}

// Pressure is the share (percent) of the window during which at least one
// task on the machine waited for CPU, or for I/O.
type Pressure struct {
	CPU float64 `json:"cpuPercent"`
	IO  float64 `json:"ioPercent"`
}

// Usage is a process's resource use over the window.
type Usage struct {
	PID        int      `json:"pid,omitempty"`
	Names      []string `json:"names,omitempty"` // processes summed (Infra)
	CPUSeconds float64  `json:"cpuSeconds"`
	Cores      float64  `json:"cores"` // CPUSeconds / window
	PeakRSSMiB float64  `json:"peakRssMiB"`
}

func latencyOf(h *Histogram) Latency {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Latency{Count: h.Count(), P50: ms(h.Quantile(0.50)), P95: ms(h.Quantile(0.95)), P99: ms(h.Quantile(0.99))}
}

// errorCounts counts failures by "<endpoint> <status>".
type errorCounts map[string]int64

func (e errorCounts) add(endpoint string, code int) {
	key := endpoint + " transport"
	if code != 0 {
		key = endpoint + " " + strconv.Itoa(code)
	}
	e[key]++
}

func (e errorCounts) addN(key string, n int) { e[key] += int64(n) }

func (e errorCounts) merge(o errorCounts) {
	for k, v := range o {
		e[k] += v
	}
}

// TableHeader is the Markdown header of the rows Row writes.
const TableHeader = "| scenario | backend | mode | load | window s | accepted SMS/s | queue req/s | pulled SMS/s | reported SMS/s " +
	"| queue ms p50/p95/p99 | get_messages ms p50/p95/p99 | status ms p50/p95/p99 | queue→phone ms p50/p95/p99 " +
	"| errors | server CPU s (cores) | server peak RSS MiB | NATS+PostgreSQL CPU s (cores) | tool CPU s (cores) | CPU / IO stall % | webhook events/s · lookups/s · store deliveries/s |\n" +
	"|---|---|---|---|--:|--:|--:|--:|--:|---|---|---|---|---|--:|--:|--:|--:|--:|---|\n"

// Row is the result as one Markdown table row (see TableHeader).
func (r *Result) Row() string {
	cells := []string{
		r.Scenario, r.Backend, r.Mode, r.load(),
		fmt.Sprintf("%.1f", r.Seconds),
		rate(r.AcceptedPerSec, r.queues()),
		rate(r.QueueRequestsPerSec, r.queues()),
		rate(r.PulledPerSec, r.Phones > 0 && r.Mode != "ingest"),
		rate(r.ReportedPerSec, r.Phones > 0 && r.Mode != "ingest"),
		quantiles(r.Latency["queue"]),
		quantiles(r.Latency["get_messages"]),
		quantiles(r.Latency["status"]),
		quantiles(r.Latency["queue_to_phone"]),
		r.errorsCell(),
		"—", "—", "—",
		fmt.Sprintf("%.1f (%.2f)", r.Tool.CPUSeconds, r.Tool.Cores),
		"—",
		r.otherCell(),
	}
	if r.Pressure != nil {
		cells[18] = fmt.Sprintf("%.0f / %.0f", r.Pressure.CPU, r.Pressure.IO)
	}
	if r.Server != nil {
		cells[14] = fmt.Sprintf("%.1f (%.2f)", r.Server.CPUSeconds, r.Server.Cores)
		cells[15] = fmt.Sprintf("%.0f", r.Server.PeakRSSMiB)
	}
	if r.Infra != nil {
		cells[16] = fmt.Sprintf("%.1f (%.2f)", r.Infra.CPUSeconds, r.Infra.Cores)
	}
	return "| " + strings.Join(cells, " | ") + " |\n"
}

// otherCell is the webhook delivery and lookup figures, when the run has
// them.
func (r *Result) otherCell() string {
	var parts []string
	if w := r.Webhooks; w != nil {
		parts = append(parts, fmt.Sprintf("%s events/s delivered (%s of %s in %.1f s; %s/s in the window)",
			thousands(w.PerSec), thousands(float64(w.Events)), thousands(float64(w.Expected)), w.Seconds, thousands(w.InWindowPerSec)))
	}
	if l := r.Lookups; l != nil {
		parts = append(parts, fmt.Sprintf("%s lookups/s (%s found)", thousands(l.PerSec), thousands(float64(l.Found))))
	}
	if s := r.Stores; s != nil {
		parts = append(parts, fmt.Sprintf("%s store deliveries/s (%s); %s orders/s queued as SMS (%s)",
			thousands(s.DeliveriesPerSec), thousands(float64(s.Deliveries)), thousands(s.OrdersPerSec), thousands(float64(s.Queued))))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, "; ")
}

// queues says whether the run's clients queued messages through /queue
// in the window (ingest and mixed).
func (r *Result) queues() bool {
	return r.Mode != ModeDrain && r.Mode != ModeLookup && r.Mode != ModeStores
}

func (r *Result) load() string {
	var parts []string
	if r.Mode == "drain" && r.Prefill != nil {
		parts = append(parts, fmt.Sprintf("%s prefilled", thousands(float64(r.Prefill.Messages))))
		if r.Prefill.Scheduled > 0 {
			parts = append(parts, fmt.Sprintf("%s of them scheduled for later", thousands(float64(r.Prefill.Scheduled))))
		}
	} else if r.Mode == ModeStores {
		parts = append(parts, fmt.Sprintf("%d WooCommerce stores, %d senders", r.Merchants, r.Senders))
	} else if r.Mode == ModeLookup {
		parts = append(parts, fmt.Sprintf("%d merchants × lookups of 1000", r.Merchants))
		if r.Prefill != nil {
			parts = append(parts, fmt.Sprintf("%s stored", thousands(float64(r.Prefill.Messages))))
		}
	} else if r.Merchants > 0 {
		parts = append(parts, fmt.Sprintf("%d merchants × %d", r.Merchants, r.Batch))
		if r.Prefill != nil {
			parts = append(parts, fmt.Sprintf("%s waiting", thousands(float64(r.Prefill.Messages))))
		}
	}
	if r.Phones > 0 && r.Mode != "ingest" {
		parts = append(parts, fmt.Sprintf("%d phones × limit %d", r.Phones, r.Limit))
		if r.PollEveryMs > 0 {
			parts = append(parts, fmt.Sprintf("a poll per phone at most every %s", time.Duration(r.PollEveryMs*1e6)))
		}
	}
	if r.HighShare > 0 {
		parts = append(parts, fmt.Sprintf("%g%% high priority", r.HighShare*100))
	}
	if r.ScheduledShare > 0 && (r.Mode != "drain" || r.Prefill == nil) {
		parts = append(parts, fmt.Sprintf("%g%% scheduled for later", r.ScheduledShare*100))
	}
	if r.Webhooks != nil {
		parts = append(parts, "a batch webhook per account")
	}
	return strings.Join(parts, ", ")
}

func (r *Result) errorsCell() string {
	if r.ErrorTotal == 0 {
		return "0"
	}
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, r.Errors[k]))
	}
	if r.ServerStop != "" {
		parts = append(parts, "server stop: "+r.ServerStop)
	}
	return strings.Join(parts, "; ")
}

func rate(v float64, show bool) string {
	if !show {
		return "—"
	}
	return thousands(v)
}

func quantiles(l Latency) string {
	if l.Count == 0 {
		return "—"
	}
	return ms(l.P50) + " / " + ms(l.P95) + " / " + ms(l.P99)
}

// ms formats milliseconds with about three significant digits.
func ms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// thousands formats v rounded, with commas: 123456.7 -> "123,457".
func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// WriteSummary writes a human-readable report.
func (r *Result) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "%s (%s, %s, %s) over %.1f s\n", r.Scenario, r.Backend, r.Mode, r.load(), r.Seconds)
	if p := r.Prefill; p != nil {
		fmt.Fprintf(w, "  prefill      %s messages in %.1f s (%s SMS/s; queue p50 %s ms, p99 %s ms); stored by the server after %.1f s (%s SMS/s)\n",
			thousands(float64(p.Messages)), p.Seconds, thousands(p.PerSec), ms(p.QueueLatency.P50), ms(p.QueueLatency.P99),
			p.StoredSeconds, thousands(float64(p.Messages)/max(p.StoredSeconds, 1e-9)))
	}
	if r.Webhooks != nil || r.Lookups != nil || r.Stores != nil {
		fmt.Fprintf(w, "  other        %s\n", r.otherCell())
	}
	if r.queues() {
		fmt.Fprintf(w, "  accepted     %s SMS (%s SMS/s, %s requests/s)\n", thousands(float64(r.Accepted)), thousands(r.AcceptedPerSec), thousands(r.QueueRequestsPerSec))
	}
	if r.Phones > 0 && r.Mode != "ingest" {
		fmt.Fprintf(w, "  pulled       %s SMS (%s SMS/s)\n", thousands(float64(r.Pulled)), thousands(r.PulledPerSec))
		fmt.Fprintf(w, "  reported     %s SMS (%s SMS/s; %s sent, %s failed; server updated %s)\n", thousands(float64(r.Reported)),
			thousands(r.ReportedPerSec), thousands(float64(r.Sent)), thousands(float64(r.Failed)), thousands(float64(r.Updated)))
	}
	for _, k := range []string{"queue", "get_messages", "status", "queue_to_phone", "lookup", "store_hook"} {
		if l, ok := r.Latency[k]; ok && l.Count > 0 {
			fmt.Fprintf(w, "  %-14s p50 %s ms, p95 %s ms, p99 %s ms (%d)\n", k, ms(l.P50), ms(l.P95), ms(l.P99), l.Count)
		}
	}
	fmt.Fprintf(w, "  errors       %s\n", r.errorsCell())
	if r.Server != nil {
		fmt.Fprintf(w, "  server       %.1f CPU s (%.2f cores), peak RSS %.0f MiB (pid %d)\n", r.Server.CPUSeconds, r.Server.Cores, r.Server.PeakRSSMiB, r.Server.PID)
	}
	if r.Infra != nil {
		fmt.Fprintf(w, "  infra        %.1f CPU s (%.2f cores) in %s\n", r.Infra.CPUSeconds, r.Infra.Cores, strings.Join(r.Infra.Names, ", "))
	}
	fmt.Fprintf(w, "  tool         %.1f CPU s (%.2f cores), peak RSS %.0f MiB\n", r.Tool.CPUSeconds, r.Tool.Cores, r.Tool.PeakRSSMiB)
	if p := r.Pressure; p != nil {
		fmt.Fprintf(w, "  machine      some task waited for CPU %.0f%%, for I/O %.0f%% of the window\n", p.CPU, p.IO)
	}
	if r.Verified != nil {
		if *r.Verified {
			fmt.Fprintf(w, "  verified     every accepted message pulled and reported exactly once\n")
		} else {
			fmt.Fprintf(w, "  verify FAILED: %s\n", r.VerifyError)
		}
	}
}

// WriteJSON writes the result as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
