#!/usr/bin/env bash
# The standard benchmark set (`make bench`): every scenario against a freshly
# spawned all-in-one server (embedded NATS + SQLite), then against a freshly
# spawned distributed one (the local NATS server and PostgreSQL, a fresh
# namespace and database per run, removed afterwards). Writes
# bench-results/table.md (Markdown) and bench-results/<backend>-<scenario>.json.
#
# Settings (environment): BIN (default bin/apitosms), OUT (bench-results),
# BENCH_DURATION (window of the timed scenarios, default 20s), BENCH_PREFILL
# (messages queued before the drain, default 500000), BENCH_NATS_URL,
# BENCH_DATABASE_URL (an existing database; the run's own is created beside
# it), BENCH_DISTRIBUTED=0 to skip the distributed mode, BENCH_FLAT=1 to add
# ingest and drain with 10 million messages waiting (all-in-one; about five
# minutes each, most of it queueing and storing the 10 million).
set -euo pipefail

BIN=${BIN:-bin/apitosms}
OUT=${OUT:-bench-results}
DURATION=${BENCH_DURATION:-20s}
PREFILL=${BENCH_PREFILL:-500000}
NATS_URL=${BENCH_NATS_URL:-nats://127.0.0.1:4222}
DB_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
DISTRIBUTED=${BENCH_DISTRIBUTED:-1}
FLAT=${BENCH_FLAT:-0}

mkdir -p "$OUT"
table="$OUT/table.md"
rm -f "$table" "$OUT"/*.json "$OUT/server.log"

{
	echo "# apitosms benchmark results"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
	echo "- $(go version 2>/dev/null || echo 'go: not in PATH')"
	echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)$( [ -r /proc/pressure/cpu ] && echo "; CPU pressure (some, avg60) $(awk '/^some/ {split($3,a,"="); print a[2]}' /proc/pressure/cpu)%")"
	echo "- window ${DURATION} per timed scenario; drain: ${PREFILL} messages queued and stored first (the tool waits until every consumer lag gauge reads 0), then timed until all are pulled and reported"
	echo "- the load generator runs on the same machine (its own CPU: \"tool\" column); \"CPU / IO stall %\": share of the window during which some task on the box waited for CPU / for I/O (Linux PSI)"
} > "$table"

# scenario NAME ARGS...: one run on each backend selected by $spawn.
run() {
	local backend=$1 name=$2
	shift 2
	echo "== $backend $name" >&2
	"$BIN" bench -q -spawn "${spawn[@]}" -scenario "$name" -table "$table" -json \
		-server-log "$OUT/server.log" "$@" > "$OUT/$backend-$name.json"
}

scenarios() {
	local backend=$1
	run "$backend" ingest-batch-1000 -mode ingest -merchants 4 -batch 1000 -duration "$DURATION"
	run "$backend" ingest-single -mode ingest -merchants 64 -batch 1 -duration "$DURATION"
	run "$backend" drain -mode drain -merchants 4 -batch 1000 -phones 32 -limit 200 -messages "$PREFILL" -duration 60s
	run "$backend" mixed -mode mixed -merchants 4 -batch 1000 -phones 32 -limit 200 -duration "$DURATION"
}

spawn=()
scenarios all-in-one
if [ "$FLAT" != 0 ]; then
	run all-in-one ingest-10M-waiting -mode ingest -merchants 4 -batch 1000 -duration "$DURATION" -prefill 10000000
	run all-in-one drain-10M-waiting -mode drain -merchants 4 -batch 1000 -phones 32 -limit 200 -prefill 10000000 -duration "$DURATION"
fi
if [ "$DISTRIBUTED" != 0 ]; then
	spawn=(-nats-url "$NATS_URL" -database-url "$DB_URL")
	scenarios distributed
fi
echo "wrote $table" >&2
