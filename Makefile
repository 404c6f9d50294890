# Gatehouse. `make demo` runs a garage; `make test` runs everything CI runs.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
CMDS := gatehouse-edge gatehouse-sim gatehouse-cloud
FUZZTIME ?= 3s

.PHONY: all build cross deps test test-go fuzz bench bench-lpr bench-tesseract lpr-model demo proto clean

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
	$(GO) vet -tags gocv ./cmd/gatehouse-edge/ ./cmd/gatehouse-sim/ ./firmware-adapters/lpr/... ./firmware-adapters/sim/camerasim/
	@# The -tags gocv end-to-end run (TestEndToEndLPR) mostly waits on its simulated
	@# garage, not on the CPU: it runs beside the main suite, its output after it.
	$(GO) test -count=1 -timeout 15m -tags gocv -run 'LPR|LoopTap' ./cmd/gatehouse-edge/ ./cmd/gatehouse-sim/ ./firmware-adapters/sim/camerasim/ >$(BIN)/test-gocv.log 2>&1 & bg=$$!; \
	GATEHOUSE_ARM64_BINARY=$(CURDIR)/$(BIN)/linux-arm64/gatehouse-edge $(GO) test -count=1 -timeout 15m ./...; st=$$?; \
	wait $$bg; bst=$$?; echo "== beside it, with -tags gocv:"; cat $(BIN)/test-gocv.log; [ $$st -eq 0 ] && [ $$bst -eq 0 ]
	$(GO) test -count=1 -race -short ./edge/...
	$(GO) test -count=1 -tags gocv ./firmware-adapters/lpr/...
	FUZZTIME=$(FUZZTIME) .ci/fuzz

fuzz:
	FUZZTIME=$(FUZZTIME) .ci/fuzz

# Benchmarks print a table; docs/BENCHMARKS.md records results and method.
bench:
	@.ci/bench

# Plate recognition on photographs with ground truth (docs/BENCHMARKS.md), on one core.
LPR_DATA ?= ../shared/data/alpr
bench-lpr:
	@.ci/install-deps
	$(GO) build -tags gocv -o $(BIN)/lprbench ./firmware-adapters/lpr/cmd/lprbench
	OPENCV_FOR_THREADS_NUM=1 taskset -c 0 $(BIN)/lprbench -data $(LPR_DATA)

# Measures Tesseract (Debian's tesseract-ocr-eng) on the same photographs, given
# each true plate box: the reader the recognizer's own classifier was chosen over.
bench-tesseract:
	@.ci/install-deps tesseract
	$(GO) build -tags gocv -o $(BIN)/lprbench ./firmware-adapters/lpr/cmd/lprbench
	OPENCV_FOR_THREADS_NUM=1 taskset -c 0 $(BIN)/lprbench -tesseract -data $(LPR_DATA)

# Retrains the plate reader's classifier (firmware-adapters/lpr/model.bin: an
# ensemble of two perceptrons) on plates rendered with Debian's fonts and the
# pinned web fonts fetch-fonts.sh takes from npm, 20 to 50 minutes on two cores
# by machine; then its second opinion (checker.bin, a convolutional network)
# with PyTorch (Debian's python3-torch) on the same glyphs, about 25 minutes
# more. The glyphs are kept in $(BIN)/lprsamples.* (2.4 GB on disk, about 7 GB in
# memory while the network trains).
lpr-model:
	@.ci/install-deps lpr-model
	firmware-adapters/lpr/cmd/lprtrain/fetch-fonts.sh $(BIN)/lprfonts
	$(GO) run -tags gocv ./firmware-adapters/lpr/cmd/lprtrain -webfonts $(BIN)/lprfonts -samples $(BIN)/lprsamples -out firmware-adapters/lpr/model.bin
	/usr/bin/python3 firmware-adapters/lpr/cmd/lprtrain/train-cnn.py -out firmware-adapters/lpr/checker.bin $(BIN)/lprsamples.1 $(BIN)/lprsamples.2

demo: build
	@deploy/demo.sh

proto:
	cd proto && $(GO) tool buf lint && $(GO) tool buf generate

clean:
	rm -rf $(BIN)
