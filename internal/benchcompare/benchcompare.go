// Package benchcompare compares two sets of load benchmark results (the
// JSON that `apitosms bench -json` writes): for every scenario and figure it
// takes the median of each set's runs and the ratio head/base, and writes
// them as a Markdown table. `make bench-compare` (scripts/bench-compare.sh)
// uses it through `apitosms bench-compare`; see docs/benchmarks.md.
package benchcompare

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/apitosms/apitosms/internal/loadgen"
)

// Better says which direction of a figure is an improvement.
type Better string

const (
	Higher  Better = "higher"
	Lower   Better = "lower"
	Context Better = "context" // not the build's doing (machine load)
)

// Row is one figure of one scenario, compared.
type Row struct {
	Backend  string
	Scenario string
	Metric   string
	Better   Better
	Base     []float64 // one value per run
	Head     []float64
}

// Ratio is head's median over base's, and false when either side has no
// value or base's median is 0 (no ratio exists).
func (r Row) Ratio() (float64, bool) {
	b, okb := Median(r.Base)
	h, okh := Median(r.Head)
	if !okb || !okh || b == 0 {
		return 0, false
	}
	return h / b, true
}

// Spread is the larger of the two sides' relative ranges, (max − min) /
// median, and false when neither side has two runs with a non-zero median.
// A ratio whose distance from 1 is not clearly larger than this is noise.
func (r Row) Spread() (float64, bool) {
	var s float64
	ok := false
	for _, v := range [][]float64{r.Base, r.Head} {
		m, has := Median(v)
		if len(v) < 2 || !has || m == 0 {
			continue
		}
		s = max(s, (slices.Max(v)-slices.Min(v))/math.Abs(m))
		ok = true
	}
	return s, ok
}

// Median of vs: the middle value, or the mean of the two middle ones; false
// for none.
func Median(vs []float64) (float64, bool) {
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Clone(vs)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], true
	}
	return (s[n/2-1] + s[n/2]) / 2, true
}

// Load reads results from JSON files and directories (every *.json directly
// in them, in name order). Each file holds one result.
func Load(paths ...string) ([]loadgen.Result, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		m, err := filepath.Glob(filepath.Join(p, "*.json"))
		if err != nil {
			return nil, err
		}
		sort.Strings(m)
		files = append(files, m...)
	}
	out := make([]loadgen.Result, 0, len(files))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var r loadgen.Result
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("%s: not a bench result: %w", f, err)
		}
		if r.Scenario == "" || r.Backend == "" {
			return nil, fmt.Errorf("%s: not a bench result (no scenario or backend)", f)
		}
		out = append(out, r)
	}
	return out, nil
}

// metric is one figure a result may have.
type metric struct {
	name   string
	better Better
	// value is the figure of r, false when r's scenario does not have it.
	value func(r *loadgen.Result) (float64, bool)
}

// metrics are the figures compared, in table order; name is computed from
// the group's first result (the same scenario has the same mode and batch).
func metrics(first *loadgen.Result) []metric {
	notDrain := func(r *loadgen.Result) bool {
		return r.Mode != loadgen.ModeDrain && r.Mode != loadgen.ModeLookup && r.Mode != loadgen.ModeStores
	}
	ms := []metric{
		{"accepted SMS/s", Higher, func(r *loadgen.Result) (float64, bool) { return r.AcceptedPerSec, notDrain(r) }},
		// Requests are the unit of one-message-per-request scenarios; with
		// batches their rate is the accepted rate over the batch size.
		{"queue req/s", Higher, func(r *loadgen.Result) (float64, bool) { return r.QueueRequestsPerSec, notDrain(r) && r.Batch == 1 }},
		{"drained SMS/s (pulled and reported)", Higher, func(r *loadgen.Result) (float64, bool) {
			return r.ReportedPerSec, r.Mode == loadgen.ModeDrain
		}},
		{"webhook events delivered/s", Higher, func(r *loadgen.Result) (float64, bool) {
			if r.Webhooks == nil {
				return 0, false
			}
			return r.Webhooks.PerSec, true
		}},
		{"lookups/s (bulk, 1000 a request)", Higher, func(r *loadgen.Result) (float64, bool) {
			if r.Lookups == nil {
				return 0, false
			}
			return r.Lookups.PerSec, true
		}},
		{"store deliveries/s (verified and stored)", Higher, func(r *loadgen.Result) (float64, bool) {
			if r.Stores == nil {
				return 0, false
			}
			return r.Stores.DeliveriesPerSec, true
		}},
		{"orders/s queued as SMS", Higher, func(r *loadgen.Result) (float64, bool) {
			if r.Stores == nil {
				return 0, false
			}
			return r.Stores.OrdersPerSec, true
		}},
		{"pulled SMS/s", Higher, func(r *loadgen.Result) (float64, bool) { return r.PulledPerSec, r.Mode == loadgen.ModeMixed }},
		{"reported SMS/s", Higher, func(r *loadgen.Result) (float64, bool) { return r.ReportedPerSec, r.Mode == loadgen.ModeMixed }},
		{"prefill stored in s", Lower, func(r *loadgen.Result) (float64, bool) {
			if r.Prefill == nil || r.Prefill.StoredSeconds == 0 {
				return 0, false
			}
			return r.Prefill.StoredSeconds, true
		}},
	}
	endpoints := []string{"queue", "get_messages", "status", "lookup", "store_hook"}
	if first.Mode == loadgen.ModeMixed {
		endpoints = append(endpoints, "queue_to_phone")
	}
	for _, ep := range endpoints {
		label := ep
		if ep == "queue_to_phone" {
			label = "queue→phone"
		}
		for _, q := range []struct {
			name string
			get  func(loadgen.Latency) float64
		}{
			{"p50", func(l loadgen.Latency) float64 { return l.P50 }},
			{"p95", func(l loadgen.Latency) float64 { return l.P95 }},
			{"p99", func(l loadgen.Latency) float64 { return l.P99 }},
		} {
			ms = append(ms, metric{label + " " + q.name + " ms", Lower, func(r *loadgen.Result) (float64, bool) {
				l, ok := r.Latency[ep]
				if !ok || l.Count == 0 {
					return 0, false
				}
				return q.get(l), true
			}})
		}
	}
	unit, units := workUnit(first)
	perUnit := func(u *loadgen.Usage, r *loadgen.Result) (float64, bool) {
		n := units(r)
		if u == nil || n <= 0 {
			return 0, false
		}
		return u.CPUSeconds / n * 1e6, true
	}
	ms = append(ms,
		metric{"server CPU µs / " + unit, Lower, func(r *loadgen.Result) (float64, bool) { return perUnit(r.Server, r) }},
		metric{"NATS+PostgreSQL CPU µs / " + unit, Lower, func(r *loadgen.Result) (float64, bool) { return perUnit(r.Infra, r) }},
		// Phones' cost per request: everything the server did in the window
		// (claims, reports, their consumers) over the get_messages answered.
		metric{"server CPU µs / poll", Lower, func(r *loadgen.Result) (float64, bool) {
			polls := r.Latency["get_messages"].Count
			if r.Server == nil || polls <= 0 || r.Mode == loadgen.ModeIngest {
				return 0, false
			}
			return r.Server.CPUSeconds / float64(polls) * 1e6, true
		}},
		metric{"server peak RSS MiB", Lower, func(r *loadgen.Result) (float64, bool) {
			if r.Server == nil {
				return 0, false
			}
			return r.Server.PeakRSSMiB, true
		}},
		metric{"errors", Lower, func(r *loadgen.Result) (float64, bool) { return float64(r.ErrorTotal), true }},
		metric{"CPU stall %", Context, func(r *loadgen.Result) (float64, bool) {
			if r.Pressure == nil {
				return 0, false
			}
			return r.Pressure.CPU, true
		}},
	)
	return ms
}

// workUnit names what a scenario's CPU is divided by, and counts it: the
// accepted SMS of an ingest (requests when each carries one), the drained
// SMS of a drain, and SMS accepted plus SMS reported in mixed mode.
func workUnit(r *loadgen.Result) (string, func(*loadgen.Result) float64) {
	switch {
	case r.Mode == loadgen.ModeLookup:
		return "lookup", func(r *loadgen.Result) float64 {
			if r.Lookups == nil {
				return 0
			}
			return float64(r.Lookups.Lookups)
		}
	case r.Mode == loadgen.ModeStores:
		return "order queued", func(r *loadgen.Result) float64 {
			if r.Stores == nil {
				return 0
			}
			return float64(r.Stores.Queued)
		}
	case r.Mode == loadgen.ModeDrain:
		return "drained SMS", func(r *loadgen.Result) float64 { return float64(r.Reported) }
	case r.Mode == loadgen.ModeMixed:
		return "SMS accepted or reported", func(r *loadgen.Result) float64 { return float64(r.Accepted + r.Reported) }
	case r.Batch == 1:
		return "request", func(r *loadgen.Result) float64 { return float64(r.QueueRequests) }
	default:
		return "accepted SMS", func(r *loadgen.Result) float64 { return float64(r.Accepted) }
	}
}

// Compare groups the results by backend and scenario (in the order they
// first appear in head, then in base) and compares every figure either side
// has. The error count is compared only when some run had errors.
func Compare(base, head []loadgen.Result) []Row {
	type key struct{ backend, scenario string }
	var order []key
	groups := map[key]*[2][]*loadgen.Result{}
	add := func(side int, rs []loadgen.Result) {
		for i := range rs {
			k := key{rs[i].Backend, rs[i].Scenario}
			g, ok := groups[k]
			if !ok {
				g = &[2][]*loadgen.Result{}
				groups[k] = g
				order = append(order, k)
			}
			g[side] = append(g[side], &rs[i])
		}
	}
	add(1, head)
	add(0, base)
	var rows []Row
	for _, k := range order {
		g := groups[k]
		first := slices.Concat(g[1], g[0])[0]
		for _, m := range metrics(first) {
			row := Row{Backend: k.backend, Scenario: k.scenario, Metric: m.name, Better: m.better}
			for side, rs := range g {
				for _, r := range rs {
					if v, ok := m.value(r); ok {
						if side == 0 {
							row.Base = append(row.Base, v)
						} else {
							row.Head = append(row.Head, v)
						}
					}
				}
			}
			if len(row.Base)+len(row.Head) == 0 {
				continue
			}
			if m.name == "errors" && slices.Max(slices.Concat(row.Base, row.Head)) == 0 {
				continue
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// Runs counts the runs of each side per backend and scenario, for a note
// when a side has fewer (a run that failed).
func Runs(base, head []loadgen.Result) map[string][2]int {
	n := map[string][2]int{}
	for side, rs := range [][]loadgen.Result{base, head} {
		for _, r := range rs {
			k := r.Backend + " " + r.Scenario
			c := n[k]
			c[side]++
			n[k] = c
		}
	}
	return n
}

// WriteTable writes rows as a Markdown table with columns padded for a
// terminal, a scenario's backend and name on its first row only, and then
// notes on runs missing from either side.
func WriteTable(w io.Writer, rows []Row, runs map[string][2]int) error {
	cells := [][]string{{"backend", "scenario", "figure", "better", "base", "head", "head/base", "spread"}}
	var prev string
	for _, r := range rows {
		backend, scenario := r.Backend, r.Scenario
		if k := r.Backend + " " + r.Scenario; k == prev {
			backend, scenario = "", ""
		} else {
			prev = k
		}
		ratio, spread := "—", "—"
		if v, ok := r.Ratio(); ok {
			ratio = strconv.FormatFloat(v, 'f', 2, 64)
		}
		if v, ok := r.Spread(); ok {
			spread = fmt.Sprintf("%.0f%%", v*100)
		}
		cells = append(cells, []string{backend, scenario, r.Metric, string(r.Better),
			medianCell(r.Base), medianCell(r.Head), ratio, spread})
	}
	right := []bool{false, false, false, false, true, true, true, true}
	width := make([]int, len(right))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(row []string) {
		b.WriteString("|")
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if right[i] {
				b.WriteString(" " + pad + c + " |")
			} else {
				b.WriteString(" " + c + pad + " |")
			}
		}
		b.WriteString("\n")
	}
	line(cells[0])
	b.WriteString("|")
	for i, wd := range width {
		if right[i] {
			b.WriteString(strings.Repeat("-", wd+1) + ":|")
		} else {
			b.WriteString(strings.Repeat("-", wd+2) + "|")
		}
	}
	b.WriteString("\n")
	for _, row := range cells[1:] {
		line(row)
	}
	b.WriteString("\nbase and head: the median of each build's runs; head/base: their ratio (\"better\" says which way is an " +
		"improvement); spread: the larger of the two builds' (max − min) / median over their runs, the noise a ratio has to beat.\n")
	keys := make([]string, 0, len(runs))
	for k := range runs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var uneven []string
	for _, k := range keys {
		if c := runs[k]; c[0] != c[1] {
			uneven = append(uneven, fmt.Sprintf("%s: %d base, %d head", k, c[0], c[1]))
		}
	}
	if len(uneven) > 0 {
		b.WriteString("\nRuns missing (a run failed; see its log): " + strings.Join(uneven, "; ") + ".\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func medianCell(vs []float64) string {
	m, ok := Median(vs)
	if !ok {
		return "—"
	}
	return format(m)
}

// format prints about three significant digits, whole numbers without
// decimals, and thousands separators from 1,000 up.
func format(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1000 || v == math.Trunc(v): // counts stay whole
		return thousands(v)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(math.Abs(v))), 10)
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
