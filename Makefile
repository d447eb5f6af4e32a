# apitosms — see README.md. `make run` starts the server, `make test` runs every module's tests.
GO      ?= go
MODULES := libs services/billing services/ingress services/queue services/status services/releases services/webhooks .
BIN     := bin/apitosms
DATA    ?= ./data
BENCHTIME ?= 100x

export GOTOOLCHAIN := local

.PHONY: all build run test test-short vet fmt bench bench-go clean

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/apitosms

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
	rm -rf bin
