# apitosms — see README.md. `make run` starts the server, `make test` runs every module's tests.
GO      ?= go
MODULES := libs services/billing services/ingress services/queue services/status services/releases services/webhooks .
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

.PHONY: all build dist run test test-short vet fmt bench bench-go clean

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

vet:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done

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

clean:
	rm -rf bin dist
