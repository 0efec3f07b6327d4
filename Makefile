# mysqlpilot: `make up` runs a three-node cluster; `make test` runs every test layer.
SHELL := /bin/bash
GO ?= go
export MYSQLPILOT_TOOLS ?= $(HOME)/.cache/mysqlpilot/bin
export PATH := $(MYSQLPILOT_TOOLS):$(PATH)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: all build lint test test-unit test-integration test-system tools bench soak clean
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

soak: tools
	$(GO) run ./test/soak $(SOAKFLAGS)

clean:
	rm -rf bin

-include mk/docker.mk
