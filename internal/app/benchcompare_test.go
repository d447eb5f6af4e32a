package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apitosms/apitosms/internal/loadgen"
)

// apitosms bench-compare BASE HEAD reads two directories of bench -json
// results and prints the comparison; a wrong command line is a usage error.
func TestBenchCompareCommand(t *testing.T) {
	dirs := [2]string{t.TempDir(), t.TempDir()}
	for side, rates := range [2][]float64{{1000, 3000}, {3000, 5000}} {
		for i, rate := range rates {
			r := loadgen.Result{Scenario: "ingest-single", Backend: "all-in-one", Mode: loadgen.ModeIngest, Merchants: 64, Batch: 1,
				Seconds: 1, Accepted: int64(rate), QueueRequests: int64(rate), AcceptedPerSec: rate, QueueRequestsPerSec: rate}
			data, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dirs[side], "r"+strconv.Itoa(i)+".json"), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := Run(context.Background(), Runtime{Args: append([]string{"bench-compare"}, args...), Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }})
		return out.String(), err
	}
	out, err := run(dirs[0], dirs[1])
	if err != nil {
		t.Fatal(err)
	}
	// Medians 2,000 and 4,000.
	if !strings.Contains(out, "| all-in-one | ingest-single | accepted SMS/s | higher | 2,000 | 4,000 |      2.00 |   100% |") {
		t.Errorf("output:\n%s", out)
	}
	for _, args := range [][]string{{}, {dirs[0]}, {dirs[0], dirs[1], dirs[1]}, {"-x", dirs[0], dirs[1]}} {
		var usage *UsageError
		if _, err := run(args...); !errors.As(err, &usage) {
			t.Errorf("bench-compare %q: %v, want a usage error", args, err)
		}
	}
	if _, err := run(dirs[0], t.TempDir()); err == nil || !strings.Contains(err.Error(), "no results") {
		t.Errorf("an empty directory: %v", err)
	}
	if out, err := run("-h"); err != nil || !strings.Contains(out, "Usage: apitosms bench-compare BASE HEAD") {
		t.Errorf("-h: %v\n%s", err, out)
	}
}
