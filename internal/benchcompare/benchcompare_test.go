package benchcompare

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apitosms/apitosms/internal/loadgen"
)

func TestMedian(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   []float64
		want float64
		ok   bool
	}{
		{nil, 0, false},
		{[]float64{7}, 7, true},
		{[]float64{3, 1}, 2, true},
		{[]float64{5, 1, 3}, 3, true},
		{[]float64{10, 1, 4, 2}, 3, true},
	} {
		in := append([]float64(nil), c.in...)
		got, ok := Median(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("Median(%v) = %v, %v; want %v, %v", in, got, ok, c.want, c.ok)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Fatalf("Median reordered its input: %v, was %v", c.in, in)
			}
		}
	}
}

func TestRatioAndSpread(t *testing.T) {
	t.Parallel()
	r := Row{Base: []float64{90, 110}, Head: []float64{120, 120, 130}}
	if got, ok := r.Ratio(); !ok || got != 1.2 {
		t.Errorf("ratio = %v, %v; want 1.2 (120/100)", got, ok)
	}
	// base: (110−90)/100 = 0.2; head: (130−120)/120 ≈ 0.083.
	if got, ok := r.Spread(); !ok || math.Abs(got-0.2) > 1e-12 {
		t.Errorf("spread = %v, %v; want 0.2", got, ok)
	}
	for _, r := range []Row{
		{Base: []float64{0, 0}, Head: []float64{3}}, // no ratio to a zero base
		{Base: nil, Head: []float64{3}},
		{Base: []float64{3}, Head: nil},
	} {
		if v, ok := r.Ratio(); ok {
			t.Errorf("%+v: ratio %v, want none", r, v)
		}
	}
	if v, ok := (Row{Base: []float64{1}, Head: []float64{2}}).Spread(); ok {
		t.Errorf("single runs: spread %v, want none", v)
	}
}

func ingest(backend string, perSec float64, rss float64) loadgen.Result {
	return loadgen.Result{
		Scenario: "ingest-batch-1000", Backend: backend, Mode: loadgen.ModeIngest, Merchants: 4, Batch: 1000,
		Seconds: 10, Accepted: int64(perSec * 10), QueueRequests: int64(perSec / 100), AcceptedPerSec: perSec, QueueRequestsPerSec: perSec / 1000,
		Latency:  map[string]loadgen.Latency{"queue": {Count: 100, P50: 10, P95: 20, P99: 30}},
		Server:   &loadgen.Usage{CPUSeconds: 10, PeakRSSMiB: rss},
		Pressure: &loadgen.Pressure{CPU: 50},
	}
}

func drain(perSec float64, errs int64) loadgen.Result {
	return loadgen.Result{
		Scenario: "drain", Backend: "all-in-one", Mode: loadgen.ModeDrain, Merchants: 4, Batch: 1000, Phones: 32, Limit: 200,
		Seconds: 10, Pulled: int64(perSec * 10), Reported: int64(perSec * 10), PulledPerSec: perSec, ReportedPerSec: perSec,
		Latency: map[string]loadgen.Latency{
			"get_messages": {Count: 10, P50: 1, P95: 2, P99: 3},
			"status":       {Count: 10, P50: 4, P95: 5, P99: 6},
		},
		Prefill:    &loadgen.Prefill{Messages: 1000, StoredSeconds: 2},
		Server:     &loadgen.Usage{CPUSeconds: 5, PeakRSSMiB: 100},
		ErrorTotal: errs,
	}
}

func find(t *testing.T, rows []Row, backend, scenario, metric string) Row {
	t.Helper()
	for _, r := range rows {
		if r.Backend == backend && r.Scenario == scenario && r.Metric == metric {
			return r
		}
	}
	t.Fatalf("no row %s / %s / %s", backend, scenario, metric)
	return Row{}
}

func TestCompare(t *testing.T) {
	t.Parallel()
	base := []loadgen.Result{ingest("all-in-one", 100000, 200), drain(40000, 0), ingest("all-in-one", 80000, 220), drain(40000, 0)}
	head := []loadgen.Result{drain(50000, 0), ingest("all-in-one", 120000, 150), drain(30000, 3), ingest("all-in-one", 110000, 170)}
	rows := Compare(base, head)

	// Groups in head's order: drain first.
	if rows[0].Scenario != "drain" {
		t.Errorf("first row %+v, want the drain (head's first result)", rows[0])
	}
	acc := find(t, rows, "all-in-one", "ingest-batch-1000", "accepted SMS/s")
	if acc.Better != Higher || len(acc.Base) != 2 || len(acc.Head) != 2 {
		t.Errorf("accepted row %+v", acc)
	}
	if v, _ := acc.Ratio(); math.Abs(v-115000.0/90000) > 1e-12 {
		t.Errorf("accepted ratio %v, want %v", v, 115000.0/90000)
	}
	// Server CPU per accepted SMS: 10 s / 1,000,000 SMS = 10 µs (base, 100k/s).
	cpu := find(t, rows, "all-in-one", "ingest-batch-1000", "server CPU µs / accepted SMS")
	if cpu.Better != Lower || math.Abs(cpu.Base[0]-10) > 1e-9 {
		t.Errorf("CPU row %+v, want base[0] = 10 µs", cpu)
	}
	if r := find(t, rows, "all-in-one", "ingest-batch-1000", "server peak RSS MiB"); r.Better != Lower {
		t.Errorf("RSS row %+v", r)
	}
	find(t, rows, "all-in-one", "ingest-batch-1000", "queue p99 ms")
	find(t, rows, "all-in-one", "ingest-batch-1000", "CPU stall %")
	d := find(t, rows, "all-in-one", "drain", "drained SMS/s (pulled and reported)")
	if v, _ := d.Ratio(); v != 1 {
		t.Errorf("drained ratio %v, want 1 (medians 40,000 and 40,000)", v)
	}
	find(t, rows, "all-in-one", "drain", "server CPU µs / drained SMS")
	find(t, rows, "all-in-one", "drain", "prefill stored in s")
	find(t, rows, "all-in-one", "drain", "status p95 ms")
	// The error count shows because one run had errors; a ratio to 0 none.
	e := find(t, rows, "all-in-one", "drain", "errors")
	if _, ok := e.Ratio(); ok {
		t.Errorf("errors ratio to a zero base: %+v", e)
	}
	for _, r := range rows {
		switch {
		case r.Scenario == "drain" && (r.Metric == "accepted SMS/s" || r.Metric == "queue p50 ms" || r.Metric == "pulled SMS/s"):
			t.Errorf("drain has %q, which it does not measure", r.Metric)
		case r.Scenario == "ingest-batch-1000" && (strings.HasPrefix(r.Metric, "drained") || strings.HasPrefix(r.Metric, "get_messages") ||
			r.Metric == "errors" || r.Metric == "queue req/s" || strings.HasPrefix(r.Metric, "NATS+PostgreSQL") || strings.HasPrefix(r.Metric, "prefill")):
			t.Errorf("ingest has %q, which it does not measure (or is all zero)", r.Metric)
		}
	}
}

// A figure that drops to nothing in head still shows, as a missing value.
func TestCompareModesAndUnits(t *testing.T) {
	t.Parallel()
	single := ingest("distributed", 2000, 100)
	single.Scenario, single.Batch, single.QueueRequests = "ingest-single", 1, 20000
	single.Infra = &loadgen.Usage{CPUSeconds: 20}
	mixed := ingest("all-in-one", 50000, 100)
	mixed.Scenario, mixed.Mode, mixed.Phones, mixed.Reported = "mixed", loadgen.ModeMixed, 8, 500000
	mixed.Latency["queue_to_phone"] = loadgen.Latency{Count: 5, P50: 100, P95: 200, P99: 300}
	headMixed := mixed
	headMixed.Latency = map[string]loadgen.Latency{} // no phone got anything
	rows := Compare([]loadgen.Result{single, mixed}, []loadgen.Result{single, headMixed})

	// 10 CPU s / 20,000 requests = 500 µs; NATS+PostgreSQL 20 s → 1000 µs.
	if r := find(t, rows, "distributed", "ingest-single", "server CPU µs / request"); math.Abs(r.Head[0]-500) > 1e-9 {
		t.Errorf("per request: %+v", r)
	}
	if r := find(t, rows, "distributed", "ingest-single", "NATS+PostgreSQL CPU µs / request"); math.Abs(r.Head[0]-1000) > 1e-9 {
		t.Errorf("infra per request: %+v", r)
	}
	// Mixed: (500,000 accepted + 500,000 reported) per 10 CPU s = 10 µs.
	if r := find(t, rows, "all-in-one", "mixed", "server CPU µs / SMS accepted or reported"); math.Abs(r.Base[0]-10) > 1e-9 {
		t.Errorf("mixed per SMS: %+v", r)
	}
	find(t, rows, "distributed", "ingest-single", "queue req/s")
	find(t, rows, "all-in-one", "mixed", "pulled SMS/s")
	find(t, rows, "all-in-one", "mixed", "reported SMS/s")
	q := find(t, rows, "all-in-one", "mixed", "queue→phone p99 ms")
	if len(q.Base) != 1 || len(q.Head) != 0 {
		t.Errorf("queue→phone row %+v: want the base value and none for head", q)
	}
}

func TestWriteTable(t *testing.T) {
	t.Parallel()
	rows := []Row{
		{Backend: "all-in-one", Scenario: "ingest-batch-1000", Metric: "accepted SMS/s", Better: Higher, Base: []float64{100000, 80000}, Head: []float64{120000, 110000}},
		{Backend: "all-in-one", Scenario: "ingest-batch-1000", Metric: "queue p99 ms", Better: Lower, Base: []float64{88.14}, Head: []float64{9.5}},
		{Backend: "distributed", Scenario: "drain", Metric: "errors", Better: Lower, Base: []float64{0}, Head: []float64{3}},
	}
	var b bytes.Buffer
	if err := WriteTable(&b, rows, map[string][2]int{"all-in-one ingest-batch-1000": {2, 2}, "distributed drain": {2, 1}}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(out, "\n")
	want := []string{
		"| backend     | scenario          | figure         | better |   base |    head | head/base | spread |",
		"|-------------|-------------------|----------------|--------|-------:|--------:|----------:|-------:|",
		// spread: base's (100,000 − 80,000) / 90,000
		"| all-in-one  | ingest-batch-1000 | accepted SMS/s | higher | 90,000 | 115,000 |      1.28 |    22% |",
		"|             |                   | queue p99 ms   | lower  |   88.1 |    9.50 |      0.11 |      — |",
		// no ratio to a zero base
		"| distributed | drain             | errors         | lower  |      0 |       3 |         — |      — |",
		"",
	}
	if got := strings.Join(lines[:len(want)], "\n"); got != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if !strings.Contains(out, "Runs missing (a run failed; see its log): distributed drain: 2 base, 1 head.") {
		t.Errorf("no note on the missing run:\n%s", out)
	}
	if strings.Contains(out, "all-in-one ingest-batch-1000: ") {
		t.Errorf("a side with all its runs is noted as missing:\n%s", out)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, r any) {
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("02-b.json", drain(1, 0))
	write("01-a.json", ingest("all-in-one", 2, 3))
	if err := os.WriteFile(filepath.Join(dir, "table.md"), []byte("| not json |"), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Scenario != "ingest-batch-1000" || rs[1].Scenario != "drain" {
		t.Fatalf("Load(dir) = %+v, want the two results in name order", rs)
	}
	if rs, err := Load(filepath.Join(dir, "02-b.json")); err != nil || len(rs) != 1 {
		t.Errorf("Load(file) = %v, %v", rs, err)
	}
	write("03-c.json", map[string]int{"x": 1})
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "03-c.json") {
		t.Errorf("a JSON file that is no result: %v, want an error naming it", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "03-c.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "03-c.json") {
		t.Errorf("a truncated file: %v, want an error naming it", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing path: no error")
	}
}
