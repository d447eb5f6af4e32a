# apitosms — see README.md. `make run` starts the server, `make test` runs every module's tests.
GO      ?= go
MODULES := libs services/billing services/console services/ingress services/queue services/status services/releases services/webhooks services/stores .
BIN     := bin/apitosms
DATA    ?= ./data
BENCHTIME ?= 100x
# Stamped into the binary (libs/buildinfo; `apitosms version` prints them).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X github.com/apitosms/apitosms/libs/buildinfo.version=$(VERSION) \
           -X github.com/apitosms/apitosms/libs/buildinfo.commit=$(COMMIT)
# make dist: static binaries for these GOOS/GOARCH pairs.
PLATFORMS ?= linux/amd64 linux/arm64 darwin/arm64

export GOTOOLCHAIN := local

.PHONY: all build dist run test test-short vet fmt bench bench-go clean cluster cluster-down cluster-test cluster-status bin/nats-server test-deploy

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/apitosms

# Release binaries: static (CGO_ENABLED=0; SQLite is pure Go), stripped,
# stamped, one per platform, with their SHA-256 sums in dist/SHA256SUMS.
dist:
	rm -rf dist && mkdir -p dist
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; out=dist/apitosms-$(VERSION)-$$os-$$arch; \
		echo "== $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $$out ./cmd/apitosms; \
	done
	cd dist && if command -v sha256sum >/dev/null; then sha256sum apitosms-*; else shasum -a 256 apitosms-*; fi > SHA256SUMS

run: build
	APITOSMS_DATA_DIR=$${APITOSMS_DATA_DIR:-$(DATA)} ./$(BIN)

# Every module's tests, with the race detector and shuffled order. With
# APITOSMS_TEST_NATS_URL and APITOSMS_TEST_DATABASE_URL set, every
# integration test also runs against that NATS server and PostgreSQL.
test:
	@set -e; for m in $(MODULES); do \
		echo "== go test $$m"; \
		(cd $$m && $(GO) test -race -shuffle=on -count=1 -timeout 15m ./...); \
	done
	@$(MAKE) --no-print-directory test-deploy

# go vet, golangci-lint (.golangci.yml) and govulncheck over every module;
# the linters are Go tool dependencies (tools/go.mod). See scripts/vet.sh
# and docs/development.md ("Lint gate"). VET_MODULES narrows it.
VET_MODULES ?= $(MODULES)
vet:
	GO='$(GO)' ./scripts/vet.sh $(VET_MODULES)

fmt:
	gofmt -w $$(git ls-files '*.go')

# The Go benchmarks of the hot paths, briefly (CI runs this: no thresholds).
bench-go:
	@set -e; for m in $(MODULES); do \
		echo "== go test -bench $$m"; \
		(cd $$m && $(GO) test -run='^$$' -bench=. -benchtime=$(BENCHTIME) -benchmem ./...); \
	done

# The load benchmark (not part of test): builds, then runs the standard set
# against a spawned all-in-one server and a spawned distributed one, and
# writes bench-results/table.md. About 4 minutes; see docs/benchmarks.md.
bench: build
	./scripts/bench.sh

# Two builds back to back (docs/benchmarks.md, "Comparing two builds"):
# BASE (a git ref; default: where this branch left main) is built in a
# temporary worktree into bin/apitosms-base, the working tree into
# bin/apitosms, and every scenario of the set runs on both, interleaved
# (BENCH_ROUNDS rounds, default 2). Prints medians and ratios head/base and
# writes bench-results/compare.md.
.PHONY: bench-compare
bench-compare: build
	BASE='$(BASE)' MAKE='$(MAKE)' ./scripts/bench-compare.sh

# The deployment files against the code: the Helm chart rendered and linted
# with Helm's Go library, the compose file, Dockerfile, Caddyfile, dashboard,
# and the alerts' promtool unit tests (promtool and caddy checks skip, saying
# so, when those tools are missing). A module outside the workspace.
test-deploy:
	@echo "== go test deployments (GOWORK=off)"
	@command -v promtool >/dev/null || echo "test-deploy: promtool missing: the alert rules' promtool checks and unit tests are SKIPPED (apt-get install prometheus)"
	@command -v caddy >/dev/null || echo "test-deploy: caddy missing: the Caddyfile check is SKIPPED (apt-get install caddy)"
	cd deployments && GOWORK=off $(GO) test -count=1 ./...

# A distributed apitosms on this machine without Docker (docs/operations.md):
# three NATS nodes, PostgreSQL, every service in its own process (2 ingress,
# 2 queue), Caddy and Prometheus, under .cluster/. cluster-test drives load
# through Caddy while it kills and restarts a NATS node, an ingress and a
# queue replica, and checks the dashboard and alert queries
# (CLUSTER_TEST_ARGS=-short: the CI version).
bin/nats-server:
	$(GO) build -o $@ github.com/nats-io/nats-server/v2

cluster: build bin/nats-server
	./scripts/cluster.sh up

cluster-down:
	./scripts/cluster.sh down

cluster-status:
	./scripts/cluster.sh status

cluster-test:
	./scripts/cluster.sh test $(CLUSTER_TEST_ARGS)

clean:
	rm -rf bin dist
