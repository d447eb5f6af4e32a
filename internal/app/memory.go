package app

import "runtime/debug"

// defaultMemoryLimit is the Go runtime's soft memory limit when GOMEMLIMIT
// is not set. Near it the garbage collector runs more often, so the heap's
// garbage stays small; allocations never fail because of it, and the
// runtime caps the collector's share of CPU. With it the all-in-one
// process's peak RSS under the benchmark loads stays below 256 MiB
// (docs/benchmarks.md). Memory outside the Go heap (SQLite page caches, the
// binary) is not counted. A bigger machine or load: set GOMEMLIMIT
// (e.g. 1GiB, or off).
const defaultMemoryLimit = 160 << 20

// applyMemoryLimit sets defaultMemoryLimit unless GOMEMLIMIT is set (the
// runtime has applied it already) and returns the limit in force.
func applyMemoryLimit(getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1)
	}
	debug.SetMemoryLimit(defaultMemoryLimit)
	return defaultMemoryLimit
}
