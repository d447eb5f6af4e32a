#!/usr/bin/env bash
# Two builds back to back (`make bench-compare BASE=<git ref>`): builds BASE
# in a temporary git worktree into bin/apitosms-base (with `make build`'s
# flags; the worktree is removed afterwards, the Go build cache kept), then
# runs every scenario of the standard set (scripts/bench-scenarios.sh) with
# the base server and with the working tree's (bin/apitosms, which make
# builds first), interleaved: BENCH_ROUNDS rounds, the first build of each
# pair alternating, so a machine's drift hits both. The load generator is
# bin/apitosms for both: only the server differs. Prints each figure's
# medians and ratio head/base and writes them to bench-results/compare.md;
# every run's JSON and the servers' logs stay under bench-results/compare/.
#
# Settings (environment): BASE (a git ref; default: the merge-base with
# origin/main or main; when that is HEAD itself, HEAD if the working tree
# has changes, else HEAD~1), BENCH_ROUNDS (default 2), BIN, BASE_BIN, OUT,
# and those of the set (BENCH_DURATION, BENCH_PREFILL, BENCH_DISTRIBUTED,
# BENCH_SCENARIOS, BENCH_FLAT, BENCH_NATS_URL, BENCH_DATABASE_URL).
set -euo pipefail

cd "$(git rev-parse --show-toplevel)"
root=$PWD
. scripts/bench-scenarios.sh
bench_check_selection

BIN=${BIN:-bin/apitosms}
BASE_BIN=${BASE_BIN:-bin/apitosms-base}
OUT=${OUT:-bench-results}
ROUNDS=${BENCH_ROUNDS:-2}
MAKE=${MAKE:-make}
# The binaries by absolute path (they are run from other directories).
case $BIN in /*) ;; *) BIN=$root/$BIN ;; esac
case $BASE_BIN in /*) ;; *) BASE_BIN=$root/$BASE_BIN ;; esac
case $ROUNDS in '' | *[!0-9]* | 0)
	echo "bench-compare: BENCH_ROUNDS must be a whole number from 1, got \"$ROUNDS\"" >&2
	exit 2
	;;
esac
if [ ! -x "$BIN" ]; then
	echo "bench-compare: $BIN missing: run make bench-compare (it builds the working tree first)" >&2
	exit 2
fi

# The base: given, or what this branch started from.
ref=${BASE:-} label=${BASE:-}
if [ -z "$ref" ]; then
	for up in origin/main main; do
		if git rev-parse -q --verify "$up^{commit}" > /dev/null; then
			ref=$(git merge-base HEAD "$up") label="the merge-base with $up"
			break
		fi
	done
	if [ -z "$ref" ] || [ "$ref" = "$(git rev-parse HEAD)" ]; then
		if [ -n "$(git status --porcelain)" ]; then ref=HEAD; else ref=HEAD~1; fi
		label=$ref
	fi
fi
if ! sha=$(git rev-parse -q --verify "$ref^{commit}"); then
	echo "bench-compare: BASE=$ref is not a commit of this repository" >&2
	exit 2
fi
base_desc="$label: $(git log -1 --format='%h %s' "$sha")"
head_desc="working tree at $(git log -1 --format='%h %s' HEAD)"
if [ -n "$(git status --porcelain)" ]; then head_desc+=", with uncommitted changes"; fi

# Build the base in a temporary worktree, removed on every exit.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/apitosms-base.XXXXXX")
cleanup() {
	if [ -d "$tmp/src" ]; then
		git -C "$root" worktree remove --force "$tmp/src" 2> /dev/null ||
			{ rm -rf "$tmp/src" && git -C "$root" worktree prune; }
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
# Ctrl-C reaches the run under way too; bash runs these once it has
# finished (stopped its server, removed what it created).
trap 'exit 130' INT
trap 'exit 143' TERM
echo "== building the base, $base_desc" >&2
git worktree add --quiet --detach "$tmp/src" "$sha"
# The working tree's Makefile, run in the base's sources: the same flags as
# make build, stamped with the base's version and commit.
rm -f "$BASE_BIN"
if ! "$MAKE" --no-print-directory -f "$root/Makefile" -C "$tmp/src" build BIN="$BASE_BIN"; then
	echo "bench-compare: building the base ($base_desc) failed" >&2
	exit 1
fi
cleanup

dir=$OUT/compare
rm -rf "$dir" "$OUT/compare.md"
mkdir -p "$dir/base" "$dir/head"
pairs=0 runs=0 failed=0

# one SIDE BACKEND NAME ROUND ARGS...: one run of a scenario on one build.
one() {
	local side=$1 backend=$2 name=$3 round=$4 server=$BIN
	shift 4
	[ "$side" = base ] && server=$BASE_BIN
	runs=$((runs + 1))
	local out
	out=$dir/$side/$(printf '%03d' "$runs")-$backend-$name.json
	echo "== $backend $name, round $round: $side" >&2
	if ! "$BIN" bench -q -spawn -bin "$server" "${bench_spawn[@]}" -scenario "$name" -json \
		-table "$dir/$side/table.md" -server-log "$dir/$side/server.log" "$@" > "$out"; then
		failed=$((failed + 1))
		echo "bench-compare: $side $backend $name round $round failed (server log: $dir/$side/server.log)" >&2
		[ -s "$out" ] || rm -f "$out" # no result at all: nothing to compare
	fi
}

# pair BACKEND NAME ARGS...: BENCH_ROUNDS rounds of the scenario on both
# builds (bench_scenarios calls it), alternating which goes first.
pair() {
	local backend=$1 name=$2 r
	shift 2
	for ((r = 1; r <= ROUNDS; r++)); do
		pairs=$((pairs + 1))
		if ((pairs % 2 == 1)); then
			one base "$backend" "$name" "$r" "$@"
			one head "$backend" "$name" "$r" "$@"
		else
			one head "$backend" "$name" "$r" "$@"
			one base "$backend" "$name" "$r" "$@"
		fi
	done
}

# The head of compare.md, with the machine's load before the runs.
header=$(
	echo "# apitosms: two builds compared"
	echo
	echo "- base: $base_desc"
	echo "- head: $head_desc"
	bench_machine
	echo "- $ROUNDS round(s) per scenario, the base and head servers interleaved (which goes first alternates); the load generator is head's for both"
	echo "- window ${DURATION} per timed scenario; drain: ${PREFILL} messages queued and stored first"
)
for backend in $(bench_backends); do
	bench_spawn_args "$backend"
	bench_scenarios pair "$backend"
done
if ! table=$("$BIN" bench-compare "$dir/base" "$dir/head"); then
	echo "bench-compare: no comparison ($failed of $runs runs failed)" >&2
	exit 1
fi
printf '%s\n\n%s\n' "$header" "$table" > "$OUT/compare.md"
echo >&2
cat "$OUT/compare.md"
echo "wrote $OUT/compare.md (each run: $dir/)" >&2
if [ "$failed" != 0 ]; then
	echo "bench-compare: $failed of $runs runs failed" >&2
	exit 1
fi
