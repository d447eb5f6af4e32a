#!/usr/bin/env bash
# make vet: go vet, golangci-lint (.golangci.yml) and govulncheck over every
# module of the workspace: the arguments (make vet passes VET_MODULES, by
# default the Makefile's MODULES), or every module go.work uses.
# The two linters are Go tool dependencies of tools/go.mod, a module kept out
# of go.work so their dependencies never change the services' builds; they
# are built into bin/tools through Go's build cache (seconds once cached).
# golangci-lint caches its analysis under $HOME/.cache/golangci-lint.
#
# govulncheck needs the Go vulnerability database (GOVULNDB, default
# https://vuln.go.dev). When it cannot be reached (an offline machine) the
# check is SKIPPED, saying so loudly, unless VULNCHECK_REQUIRED=1; any
# vulnerability found fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
GO=${GO:-go}
export GOTOOLCHAIN=local

echo "== building the linters (tools/go.mod)"
(cd tools && GOWORK=off $GO build -o "$root/bin/tools/" \
	github.com/golangci/golangci-lint/v2/cmd/golangci-lint golang.org/x/vuln/cmd/govulncheck)

modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then # every module of go.work
	mapfile -t modules < <(awk '/^use \(/{f=1; next} f && /^\)/{f=0} f && NF {sub("^\\./", "", $1); print $1}' go.work)
fi

vulndb=${GOVULNDB:-https://vuln.go.dev}
vulnskip=""
for m in "${modules[@]}"; do
	echo "== go vet $m"
	(cd "$m" && $GO vet ./...)
	echo "== golangci-lint $m"
	(cd "$m" && "$root/bin/tools/golangci-lint" run --allow-parallel-runners --config "$root/.golangci.yml" ./...)
	if [ -z "$vulnskip" ]; then
		echo "== govulncheck $m"
		set +e
		out=$(cd "$m" && "$root/bin/tools/govulncheck" -db "$vulndb" ./... 2>&1)
		rc=$?
		set -e
		if [ $rc -ne 0 ] && grep -qiE 'fetching vulnerabilities|no such host|dial tcp|connection refused|i/o timeout|Client.Timeout' <<<"$out" &&
			! grep -q 'Vulnerability #' <<<"$out"; then
			if [ "${VULNCHECK_REQUIRED:-}" = 1 ]; then
				echo "$out" >&2
				echo "FATAL: govulncheck: the vulnerability database $vulndb is unreachable" >&2
				exit 1
			fi
			vulnskip=1
		else
			echo "$out"
			[ $rc -eq 0 ] || exit $rc
		fi
	fi
done
if [ -n "$vulnskip" ]; then
	echo "vet: govulncheck SKIPPED: the vulnerability database $vulndb is unreachable from this machine (set GOVULNDB to a mirror or file:// copy; VULNCHECK_REQUIRED=1 makes this fatal)"
fi
echo "vet: passed"
