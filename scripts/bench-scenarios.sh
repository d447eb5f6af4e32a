# The standard benchmark set, in one place: sourced by scripts/bench.sh
# (`make bench`) and scripts/bench-compare.sh (`make bench-compare`), so both
# run the same scenarios with the same settings. Not a program on its own.
#
# Settings (environment): BENCH_DURATION (window of the timed scenarios,
# default 20s), BENCH_PREFILL (messages queued before the drain, default
# 500000), BENCH_NATS_URL, BENCH_DATABASE_URL (an existing database; each
# run's own is created beside it), BENCH_DISTRIBUTED=0 to skip the
# distributed mode, BENCH_FLAT=1 to add ingest and the three drains with 10 million
# messages waiting (all-in-one; about five minutes each, most of it queueing
# and storing the 10 million), BENCH_SCENARIOS to run only the named
# scenarios (comma or space separated; naming a 10-million one runs it
# without BENCH_FLAT).

DURATION=${BENCH_DURATION:-20s}
PREFILL=${BENCH_PREFILL:-500000}
NATS_URL=${BENCH_NATS_URL:-nats://127.0.0.1:4222}
DB_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
DISTRIBUTED=${BENCH_DISTRIBUTED:-1}
FLAT=${BENCH_FLAT:-0}
SCENARIOS=$(echo "${BENCH_SCENARIOS:-}" | tr ',' ' ')

# bench_scenarios FN BACKEND: calls `FN BACKEND NAME BENCH-ARGS...` for every
# selected scenario of the set on BACKEND (all-in-one or distributed), in
# order. The set itself is this function's body.
bench_scenarios() {
	local fn=$1 backend=$2
	_bench_scenario "$fn" "$backend" std ingest-batch-1000 -mode ingest -merchants 4 -batch 1000 -duration "$DURATION"
	_bench_scenario "$fn" "$backend" std ingest-single -mode ingest -merchants 64 -batch 1 -duration "$DURATION"
	_bench_scenario "$fn" "$backend" std drain -mode drain -merchants 4 -batch 1000 -phones 32 -limit 200 -messages "$PREFILL" -duration 60s
	# The drain with contract §12 fields: half the backlog scheduled for
	# later (a sendAt 29 days ahead: never handed out, the drain ends when
	# the due half is pulled), and a tenth of it high priority.
	_bench_scenario "$fn" "$backend" std drain-half-scheduled -mode drain -merchants 4 -batch 1000 -phones 32 -limit 200 -messages "$PREFILL" -duration 60s -scheduled 0.5
	_bench_scenario "$fn" "$backend" std drain-10pct-high -mode drain -merchants 4 -batch 1000 -phones 32 -limit 200 -messages "$PREFILL" -duration 60s -high 0.1
	# 1,000 phones on 100 tokens pulling 20 at a time (each reporting what it
	# pulled) against a standing backlog: what big senders' SIM fleets do.
	# phone-fleet is closed-loop (a phone polls again once its report is
	# answered: saturation throughput, and get_messages latency is 1,000 /
	# polls per second); phone-fleet-paced paces each phone like a SIM-bound
	# one, a poll at most once a second (offered 1,000 x 20 = 20,000 SMS/s),
	# for the timed window: the backlog stands throughout when PREFILL is
	# more than 20,000 x BENCH_DURATION, and latency is then the server's.
	_bench_scenario "$fn" "$backend" std phone-fleet -mode drain -merchants 100 -batch 1000 -phones 1000 -limit 20 -messages "$PREFILL" -duration 60s
	_bench_scenario "$fn" "$backend" std phone-fleet-paced -mode drain -merchants 100 -batch 1000 -phones 1000 -limit 20 -poll-every 1s -messages "$PREFILL" -duration "$DURATION"
	_bench_scenario "$fn" "$backend" std mixed -mode mixed -merchants 4 -batch 1000 -phones 32 -limit 200 -duration "$DURATION"
	# The drain again, each account with a "batch": true webhook on a local
	# receiver in the tool: events delivered per second, and the drain's
	# cost of them (compare with the drain row).
	_bench_scenario "$fn" "$backend" std drain-webhooks -mode drain -merchants 4 -batch 1000 -phones 32 -limit 200 -messages "$PREFILL" -duration 60s \
		-webhooks -env APITOSMS_WEBHOOK_ALLOW_PRIVATE=true
	# Shop deliveries (contract §13): a WooCommerce store per merchant, 32
	# senders posting signed order.created deliveries, each a new order, for
	# the window; then until every one is queued as an SMS.
	_bench_scenario "$fn" "$backend" std stores -mode stores -merchants 4 -senders 32 -duration "$DURATION"
	# Bulk lookups of 1000 hashes (POST /messages/lookup) among 100,000
	# stored messages; the read window is lifted so it measures the server.
	_bench_scenario "$fn" "$backend" std lookup-1000 -mode lookup -merchants 4 -batch 1000 -prefill 100000 -duration "$DURATION" \
		-env APITOSMS_READ_RATE_LIMIT=100000000
	if [ "$backend" = all-in-one ]; then
		_bench_scenario "$fn" "$backend" flat ingest-10M-waiting -mode ingest -merchants 4 -batch 1000 -duration "$DURATION" -prefill 10000000
		_bench_scenario "$fn" "$backend" flat drain-10M-waiting -mode drain -merchants 4 -batch 1000 -phones 32 -limit 200 -prefill 10000000 -duration "$DURATION"
		_bench_scenario "$fn" "$backend" flat drain-half-scheduled-10M-waiting -mode drain -merchants 4 -batch 1000 -phones 32 -limit 200 -prefill 10000000 -duration "$DURATION" -scheduled 0.5
		_bench_scenario "$fn" "$backend" flat drain-10pct-high-10M-waiting -mode drain -merchants 4 -batch 1000 -phones 32 -limit 200 -prefill 10000000 -duration "$DURATION" -high 0.1
	fi
}

# _bench_scenario FN BACKEND KIND NAME ARGS...: calls FN if NAME is selected:
# named in BENCH_SCENARIOS, or (none named) a standard one, or a flat one
# with BENCH_FLAT=1. With _bench_all=1 every scenario is selected.
_bench_scenario() {
	local fn=$1 backend=$2 kind=$3 name=$4
	shift 4
	if [ "${_bench_all:-0}" = 1 ]; then
		:
	elif [ -n "$SCENARIOS" ]; then
		case " $SCENARIOS " in *" $name "*) ;; *) return 0 ;; esac
	elif [ "$kind" = flat ] && [ "$FLAT" = 0 ]; then
		return 0
	fi
	"$fn" "$backend" "$name" "$@"
}

# bench_backends: the backends to run, one a line.
bench_backends() {
	echo all-in-one
	if [ "$DISTRIBUTED" != 0 ]; then echo distributed; fi
}

# bench_spawn_args BACKEND: sets the array bench_spawn to the `bench -spawn`
# flags of BACKEND (none for all-in-one).
bench_spawn_args() {
	case $1 in
	all-in-one) bench_spawn=() ;;
	distributed) bench_spawn=(-nats-url "$NATS_URL" -database-url "$DB_URL") ;;
	*)
		echo "bench: unknown backend $1" >&2
		return 1
		;;
	esac
}

# bench_check_selection: fails, listing the known names, when
# BENCH_SCENARIOS names a scenario the set does not have.
bench_check_selection() {
	local known=" " name
	_bench_collect() { known+="$2 "; }
	_bench_all=1 bench_scenarios _bench_collect all-in-one
	for name in $SCENARIOS; do
		case $known in *" $name "*) ;; *)
			echo "bench: BENCH_SCENARIOS: unknown scenario \"$name\" (known:${known% })" >&2
			return 1
			;;
		esac
	done
}

# bench_machine: Markdown list items describing the machine and its load
# now, for the head of a results file.
bench_machine() {
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
	echo "- $(go version 2>/dev/null || echo 'go: not in PATH')"
	echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)$([ -r /proc/pressure/cpu ] && echo "; CPU pressure (some, avg60) $(awk '/^some/ {split($3,a,"="); print a[2]}' /proc/pressure/cpu)%")"
}
