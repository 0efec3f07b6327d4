# mysqlpilot: `make up` runs a three-node cluster; `make test` runs every test layer.
SHELL := /bin/bash
GO ?= go
export MYSQLPILOT_TOOLS ?= $(HOME)/.cache/mysqlpilot/bin
export PATH := $(MYSQLPILOT_TOOLS):$(PATH)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: all build lint test test-unit test-integration test-system tools bench soak soak-processes clean
all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/mysqlpilot ./cmd/mysqlpilot

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) vet -tags system ./...

tools:
	test/tools/install-deps.sh

# Layer 1: fast, no external processes.
test-unit:
	$(GO) test -count=1 ./...

# Layer 2: real Consul, real mariadbd, real S3 (versitygw), in-repo Manta server, on loopback.
test-integration: tools
	$(GO) test -tags integration -count=1 -p 1 -timeout 30m ./...

# Layer 3: real containers with docker-compose (see mk/docker.mk).
test-system: tools system-tests

test: lint test-unit test-integration test-system

bench: tools
	$(GO) run ./test/bench $(BENCHFLAGS)

# The nemesis run on real containers (test/system/soak_test.go): SOAK_ROUNDS random faults,
# partitions included, on one cluster; the report goes to bench/results/.
SOAK_ROUNDS ?= 30
SOAK_SEED ?= $(shell date +%s)
SOAK_FAULTS ?=
soak: tools images
	MYSQLPILOT_SOAK_ROUNDS=$(SOAK_ROUNDS) MYSQLPILOT_SOAK_SEED=$(SOAK_SEED) \
	  $(if $(SOAK_FAULTS),MYSQLPILOT_SOAK_FAULTS=$(SOAK_FAULTS)) \
	  MYSQLPILOT_SOAK_REPORT=$(CURDIR)/bench/results/soak-containers-$$(date -u +%Y-%m-%d-%H%M).md \
	  $(MYSQLPILOT_GO) test -tags system -count=1 -timeout 3h -v -run '^TestSoak$$' ./test/system/

# The faster soak on processes (loopback; no partitions): kill -9, SIGSTOP, SIGTERM, netcut.
soak-processes: tools
	$(GO) run ./test/soak $(SOAKFLAGS)

clean:
	rm -rf bin

-include mk/docker.mk
