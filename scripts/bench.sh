#!/usr/bin/env bash
# The standard benchmark set (`make bench`): every scenario against a freshly
# spawned all-in-one server (embedded NATS + SQLite), then against a freshly
# spawned distributed one (the local NATS server and PostgreSQL, a fresh
# namespace and database per run, removed afterwards). Writes
# bench-results/table.md (Markdown) and bench-results/<backend>-<scenario>.json.
#
# Settings (environment): BIN (default bin/apitosms), OUT (bench-results),
# and those of the set in scripts/bench-scenarios.sh (BENCH_DURATION,
# BENCH_PREFILL, BENCH_NATS_URL, BENCH_DATABASE_URL, BENCH_DISTRIBUTED,
# BENCH_FLAT, BENCH_SCENARIOS).
set -euo pipefail

. "$(dirname "$0")/bench-scenarios.sh"
bench_check_selection

BIN=${BIN:-bin/apitosms}
OUT=${OUT:-bench-results}

mkdir -p "$OUT"
table="$OUT/table.md"
rm -f "$table" "$OUT"/*.json "$OUT/server.log"

{
	echo "# apitosms benchmark results"
	echo
	bench_machine
	echo "- window ${DURATION} per timed scenario; drain: ${PREFILL} messages queued and stored first (the tool waits until every consumer lag gauge reads 0), then timed until all are pulled and reported"
	echo "- the load generator runs on the same machine (its own CPU: \"tool\" column); \"CPU / IO stall %\": share of the window during which some task on the box waited for CPU / for I/O (Linux PSI)"
} > "$table"

# run BACKEND NAME ARGS...: one run of a scenario (bench_scenarios calls it).
run() {
	local backend=$1 name=$2
	shift 2
	echo "== $backend $name" >&2
	"$BIN" bench -q -spawn "${bench_spawn[@]}" -scenario "$name" -table "$table" -json \
		-server-log "$OUT/server.log" "$@" > "$OUT/$backend-$name.json"
}

for backend in $(bench_backends); do
	bench_spawn_args "$backend"
	bench_scenarios run "$backend"
done
echo "wrote $table" >&2
