# Gatehouse. `make demo` runs a garage; `make test` runs everything CI runs.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
CMDS := gatehouse-edge gatehouse-sim gatehouse-cloud
FUZZTIME ?= 3s

.PHONY: all build cross deps test test-go fuzz bench demo proto clean

all: build

build: cross
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ $(addprefix ./cmd/,$(CMDS))

# The edge runs on Raspberry Pis: pure Go (no cgo) for linux/arm64 and linux/arm v7.
cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/linux-arm64/gatehouse-edge ./cmd/gatehouse-edge
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/linux-armv7/gatehouse-edge ./cmd/gatehouse-edge

deps:
	@.ci/install-deps

test: deps build
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'))" || { gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'); echo "gofmt: files above need formatting"; exit 1; }
	GATEHOUSE_ARM64_BINARY=$(CURDIR)/$(BIN)/linux-arm64/gatehouse-edge $(GO) test -count=1 -timeout 15m ./...
	$(GO) test -count=1 -race -short ./edge/...
	FUZZTIME=$(FUZZTIME) .ci/fuzz

fuzz:
	FUZZTIME=$(FUZZTIME) .ci/fuzz

# Benchmarks print a table; docs/BENCHMARKS.md records results and method.
bench:
	@.ci/bench

demo: build
	@deploy/demo.sh

proto:
	cd proto && $(GO) tool buf lint && $(GO) tool buf generate

clean:
	rm -rf $(BIN)
