#!/usr/bin/env bash
# A real distributed apitosms on this machine, without Docker (`make
# cluster`, `make cluster-down`, `make cluster-test`; docs/operations.md):
# three NATS nodes (bin/nats-server, the version the binary embeds) with R3
# streams, a fresh database on the machine's PostgreSQL, every service as
# its own process (two ingress and two queue replicas), Caddy in front with
# deployments/Caddyfile, and Prometheus scraping every process with
# deployments/prometheus/alerts.yml loaded. Everything lives under
# $CLUSTER_DIR (default .cluster/): configs, data, logs/<process>.log,
# pids/<process>.pid.
#
#   scripts/cluster.sh up | down | status | test [args for the fault driver]
#   scripts/cluster.sh kill <process> | start <process>    (used by the test)
#
# Settings (environment): CLUSTER_DIR, CLUSTER_PORT_BASE (default 18000:
# Caddy on 18080, Prometheus on 18090, NATS clients on 18221-18223, services
# on 181xx; nothing near the machine's NATS 4222 or PostgreSQL 5432),
# CLUSTER_PG_URL (an existing database on the server to create ours from;
# default postgres://postgres@127.0.0.1:5432/postgres), CLUSTER_DB
# (default apitosms_cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=${CLUSTER_DIR:-$ROOT/.cluster}
BASE=${CLUSTER_PORT_BASE:-18000}
PG_ADMIN_URL=${CLUSTER_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
DB=${CLUSTER_DB:-apitosms_cluster}
BIN=$ROOT/bin/apitosms
NATS_BIN=$ROOT/bin/nats-server

PROXY_PORT=$((BASE + 80))
CADDY_ADMIN_PORT=$((BASE + 19))
PROM_PORT=$((BASE + 90))
NODES=(n1 n2 n3)
# process name -> HTTP port; the service is the name without its replica number.
declare -A PORT=(
	[billing-1]=$((BASE + 131)) [queue-1]=$((BASE + 111)) [queue-2]=$((BASE + 112))
	[status-1]=$((BASE + 121)) [releases-1]=$((BASE + 141)) [stores-1]=$((BASE + 151))
	[webhooks-1]=$((BASE + 161)) [console-1]=$((BASE + 171))
	[ingress-1]=$((BASE + 101)) [ingress-2]=$((BASE + 102))
)
SERVICES=(billing-1 queue-1 queue-2 status-1 releases-1 stores-1 webhooks-1 console-1 ingress-1 ingress-2)

node_index() { local i; for i in "${!NODES[@]}"; do [ "${NODES[$i]}" = "$1" ] && echo $((i + 1)); done; }
nats_client_port() { echo $((BASE + 220 + $(node_index "$1"))); }
nats_route_port() { echo $((BASE + 320 + $(node_index "$1"))); }
nats_http_port() { echo $((BASE + 820 + $(node_index "$1"))); }
nats_urls() {
	local out="" n
	for n in "${NODES[@]}"; do out+="${out:+,}nats://127.0.0.1:$(nats_client_port "$n")"; done
	echo "$out"
}
upstreams() { # service -> "127.0.0.1:p1 127.0.0.1:p2"
	local out="" p
	for p in "${SERVICES[@]}"; do
		[ "${p%-*}" = "$1" ] && out+="${out:+ }127.0.0.1:${PORT[$p]}"
	done
	echo "$out"
}
db_url() { echo "postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable"; }

log() { echo "cluster: $*" >&2; }
die() { echo "cluster: $*" >&2; exit 1; }

pid_of() { [ -f "$DIR/pids/$1.pid" ] && cat "$DIR/pids/$1.pid"; }
alive() { local pid; pid=$(pid_of "$1") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

# spawn NAME CMD...: runs CMD in its own session (so it outlives make and a
# Ctrl-C in the terminal), output appended to logs/NAME.log.
spawn() {
	local name=$1
	shift
	alive "$name" && die "$name is already running (pid $(pid_of "$name"))"
	echo "=== $(date -u +%FT%TZ) start" >>"$DIR/logs/$name.log"
	setsid bash -c 'echo $$ > "$0"; exec "$@"' "$DIR/pids/$name.pid" "$@" \
		>>"$DIR/logs/$name.log" 2>&1 </dev/null &
	local i
	for i in $(seq 1 50); do [ -s "$DIR/pids/$name.pid" ] && return 0; sleep 0.1; done
	die "$name did not start"
}

wait_http() { # url process [seconds]
	local i
	for i in $(seq 1 $((${3:-60} * 5))); do
		curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
		alive "$2" || die "$2 exited: $(tail -n 3 "$DIR/logs/$2.log")"
		sleep 0.2
	done
	die "$2 not ready at $1 (see $DIR/logs)"
}

need_tools() {
	if ! command -v caddy >/dev/null || ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
		log "installing caddy and prometheus (Debian packages)"
		[ "$(id -u)" = 0 ] || die "caddy/prometheus missing: run as root or apt-get install caddy prometheus"
		# Debian's packages may start system services; ours run from here,
		# on our own ports, with our own config and data dirs.
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends caddy prometheus >/dev/null ||
			{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends caddy prometheus >/dev/null; }
	fi
	command -v psql >/dev/null || die "psql missing (apt-get install postgresql-client)"
	[ -x "$BIN" ] || die "$BIN missing: make build"
	[ -x "$NATS_BIN" ] || die "$NATS_BIN missing: make bin/nats-server"
}

start_nats() { # node
	local n=$1 routes="" m
	for m in "${NODES[@]}"; do routes+="${routes:+, }nats-route://127.0.0.1:$(nats_route_port "$m")"; done
	mkdir -p "$DIR/nats/$n"
	cat >"$DIR/nats/$n.conf" <<EOF
server_name: $n
listen: 127.0.0.1:$(nats_client_port "$n")
http: 127.0.0.1:$(nats_http_port "$n")
max_payload: 16MB
jetstream {
  store_dir: "$DIR/nats/$n"
}
cluster {
  name: apitosms-cluster
  listen: 127.0.0.1:$(nats_route_port "$n")
  routes: [$routes]
}
EOF
	spawn "nats-$n" "$NATS_BIN" -c "$DIR/nats/$n.conf"
}

start_service() { # process name
	local name=$1 svc=${1%-*}
	mkdir -p "$DIR/data/$name"
	spawn "$name" env \
		APITOSMS_HTTP_ADDR="127.0.0.1:${PORT[$name]}" \
		APITOSMS_NATS_URL="$(nats_urls)" \
		APITOSMS_DATABASE_URL="$(db_url)" \
		APITOSMS_STREAM_REPLICAS=3 \
		APITOSMS_DATA_DIR="$DIR/data/$name" \
		APITOSMS_ADMIN_TOKEN="$(cat "$DIR/admin-token")" \
		APITOSMS_PUBLIC_URL="http://127.0.0.1:$PROXY_PORT" \
		APITOSMS_INGRESS_IDEMPOTENCY_LEASE=10s \
		APITOSMS_LOG_LEVEL="${APITOSMS_LOG_LEVEL:-info}" \
		"$BIN" -target="$svc"
}

start_caddy() {
	spawn caddy env APITOSMS_PROXY_ADDR="127.0.0.1:$PROXY_PORT" CADDY_ADMIN="127.0.0.1:$CADDY_ADMIN_PORT" \
		INGRESS_UPSTREAMS="$(upstreams ingress)" QUEUE_UPSTREAMS="$(upstreams queue)" \
		STATUS_UPSTREAMS="$(upstreams status)" BILLING_UPSTREAMS="$(upstreams billing)" \
		RELEASES_UPSTREAMS="$(upstreams releases)" STORES_UPSTREAMS="$(upstreams stores)" \
		WEBHOOKS_UPSTREAMS="$(upstreams webhooks)" CONSOLE_UPSTREAMS="$(upstreams console)" XDG_DATA_HOME="$DIR/caddy" XDG_CONFIG_HOME="$DIR/caddy" \
		caddy run --config "$ROOT/deployments/Caddyfile" --adapter caddyfile
}

start_prometheus() {
	mkdir -p "$DIR/prometheus/data"
	{
		echo "# written by scripts/cluster.sh"
		echo "global: {scrape_interval: 2s, evaluation_interval: 2s}"
		echo "rule_files: ['$ROOT/deployments/prometheus/alerts.yml']"
		echo "scrape_configs:"
		echo "  - job_name: apitosms"
		echo "    static_configs:"
		local p
		for p in "${SERVICES[@]}"; do
			echo "      - targets: ['127.0.0.1:${PORT[$p]}']"
			echo "        labels: {component: ${p%-*}, process: $p}"
		done
		echo "  - job_name: prometheus"
		echo "    static_configs: [{targets: ['127.0.0.1:$PROM_PORT']}]"
	} >"$DIR/prometheus/prometheus.yml"
	promtool check config "$DIR/prometheus/prometheus.yml" >/dev/null
	spawn prometheus prometheus --config.file="$DIR/prometheus/prometheus.yml" \
		--storage.tsdb.path="$DIR/prometheus/data" --web.listen-address="127.0.0.1:$PROM_PORT" \
		--storage.tsdb.retention.time=1d
}

start() { # process name (restart after kill)
	case $1 in
	nats-*) start_nats "${1#nats-}" ;;
	caddy) start_caddy ;;
	prometheus) start_prometheus ;;
	*) [ -n "${PORT[$1]:-}" ] || die "unknown process $1"; start_service "$1" ;;
	esac
}

stop_all() {
	local f name pid
	shopt -s nullglob
	# Proxy first, services next, brokers last.
	for phase in proxy services nats; do
		for f in "$DIR"/pids/*.pid; do
			name=$(basename "$f" .pid)
			case $phase:$name in
			proxy:caddy | proxy:prometheus | nats:nats-*) ;;
			services:caddy | services:prometheus | services:nats-* | proxy:* | nats:*) continue ;;
			esac
			pid=$(cat "$f")
			if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
				kill -TERM "$pid" 2>/dev/null || true
				echo "$name $pid"
			fi
		done | while read -r name pid; do
			for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
			if kill -0 "$pid" 2>/dev/null; then
				log "$name (pid $pid) ignored SIGTERM for 30 s: killing"
				kill -KILL "$pid" 2>/dev/null || true
			fi
		done
	done
	rm -f "$DIR"/pids/*.pid
}

table() {
	printf '%-12s %-8s %-40s %s\n' PROCESS PID ADDRESS LOG
	local n p
	for n in "${NODES[@]}"; do
		printf '%-12s %-8s %-40s %s\n' "nats-$n" "$(pid_of "nats-$n" || echo -)" \
			"nats://127.0.0.1:$(nats_client_port "$n") (mon :$(nats_http_port "$n"))" "$DIR/logs/nats-$n.log"
	done
	for p in "${SERVICES[@]}"; do
		printf '%-12s %-8s %-40s %s\n' "$p" "$(pid_of "$p" || echo -)" "http://127.0.0.1:${PORT[$p]}" "$DIR/logs/$p.log"
	done
	printf '%-12s %-8s %-40s %s\n' caddy "$(pid_of caddy || echo -)" "http://127.0.0.1:$PROXY_PORT (public)" "$DIR/logs/caddy.log"
	printf '%-12s %-8s %-40s %s\n' prometheus "$(pid_of prometheus || echo -)" "http://127.0.0.1:$PROM_PORT" "$DIR/logs/prometheus.log"
	printf '%-12s %-8s %-40s\n' postgres - "$(db_url)"
	echo
	echo "public URL    http://127.0.0.1:$PROXY_PORT   (admin token in $DIR/admin-token)"
	echo "environment   $DIR/env   (source it: APITOSMS_URL, APITOSMS_ADMIN_TOKEN, PROMETHEUS_URL, ...)"
}

up() {
	need_tools
	if [ -d "$DIR/pids" ] && ls "$DIR"/pids/*.pid >/dev/null 2>&1; then
		log "a cluster is running under $DIR: replacing it"
		down
	fi
	mkdir -p "$DIR"/{logs,pids,data,nats,prometheus,caddy}
	: >"$DIR/.gitignore"
	[ -s "$DIR/admin-token" ] || (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/admin-token")

	log "database $DB (fresh)"
	PGOPTIONS="-c client_min_messages=warning" psql "$PG_ADMIN_URL" -qAt -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null

	log "NATS: ${NODES[*]}"
	local n p
	for n in "${NODES[@]}"; do start_nats "$n"; done
	for n in "${NODES[@]}"; do wait_http "http://127.0.0.1:$(nats_http_port "$n")/healthz" "nats-$n"; done

	# One billing and one ingress first, alone: the first processes create
	# the R3 streams and buckets, which takes a busy small machine a while.
	log "services: ${SERVICES[*]}"
	for p in billing-1 ingress-1; do
		start_service "$p"
		wait_http "http://127.0.0.1:${PORT[$p]}/readyz" "$p" 120
	done
	local rest=()
	for p in "${SERVICES[@]}"; do [ "$p" = billing-1 ] || [ "$p" = ingress-1 ] || rest+=("$p"); done
	for p in "${rest[@]}"; do start_service "$p"; done
	for p in "${rest[@]}"; do wait_http "http://127.0.0.1:${PORT[$p]}/readyz" "$p" 120; done

	log "caddy, prometheus"
	start_caddy
	wait_http "http://127.0.0.1:$PROXY_PORT/healthz" caddy
	start_prometheus
	wait_http "http://127.0.0.1:$PROM_PORT/-/ready" prometheus

	cat >"$DIR/env" <<EOF
APITOSMS_URL=http://127.0.0.1:$PROXY_PORT
APITOSMS_ADMIN_TOKEN=$(cat "$DIR/admin-token")
PROMETHEUS_URL=http://127.0.0.1:$PROM_PORT
CLUSTER_NATS_URL=$(nats_urls)
CLUSTER_DATABASE_URL=$(db_url)
CLUSTER_NATS_MONITORS="$(for n in "${NODES[@]}"; do printf 'nats-%s=http://127.0.0.1:%s ' "$n" "$(nats_http_port "$n")"; done)"
CLUSTER_PROCESS_URLS="$(for p in "${SERVICES[@]}"; do printf '%s=http://127.0.0.1:%s ' "$p" "${PORT[$p]}"; done)"
CLUSTER_DIR=$DIR
CLUSTER_SCRIPT=$ROOT/scripts/cluster.sh
CLUSTER_SERVICES="${SERVICES[*]}"
CLUSTER_NODES="${NODES[*]}"
EOF
	chmod 600 "$DIR/env"
	echo
	table
}

down() {
	[ -d "$DIR" ] || { log "nothing under $DIR"; return 0; }
	stop_all
	PGOPTIONS="-c client_min_messages=warning" psql "$PG_ADMIN_URL" -qAt -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || log "could not drop database $DB"
	# Logs stay for a post-mortem until the next `up`.
	rm -rf "$DIR"/{data,nats,prometheus,caddy,pids,env,admin-token}
	log "stopped; logs kept in $DIR/logs"
}

cmd=${1:-}
shift || true
case $cmd in
up) up ;;
down) down ;;
status) table ;;
kill) alive "$1" || die "$1 is not running"; kill -KILL "$(pid_of "$1")"; rm -f "$DIR/pids/$1.pid" ;;
start) start "$1" ;;
test)
	[ -f "$DIR/env" ] || die "no cluster under $DIR: make cluster first"
	go build -o "$ROOT/bin/cluster-test" ./internal/clustertest
	"$ROOT/bin/cluster-test" -env "$DIR/env" -dashboard "$ROOT/deployments/grafana/apitosms.json" \
		-alerts "$ROOT/deployments/prometheus/alerts.yml" "$@"
	;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
