# correlator's make targets. Each installs what it needs: Go modules through
# the Go toolchain, libchdb.so (pinned, sha256-checked) into the user cache.
GO      ?= go
BIN     := bin/correlator
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build chdb demo eval fit test test-deps test-race bench bench-big lint clean

all: build

chdb:
	@scripts/install-chdb.sh >/dev/null

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/correlator

# The main job on the embedded default: a synthetic production with one
# injected incident, and the ranked "what changed?" answer.
demo: chdb build
	./$(BIN) demo

# The evaluation suites, on the test split (seeds never tuned on): every
# ranking scenario family, engine beside the baseline, then the impact
# scenarios with known affected users; PASS/FAIL per target.
eval: chdb build
	./$(BIN) eval --split test --json eval-test.json

# Refit the engine's model on the development split (writes
# internal/correlate/model.json); never on the test split.
fit: chdb build
	./$(BIN) eval --split dev --per-family 20 --fit --l2 0.001 --iterations 20000 --json eval-dev.json

test-deps:
	./scripts/install-test-deps.sh

test: chdb test-deps
	$(GO) vet ./...
	$(GO) test -count=1 ./...

test-race: chdb
	$(GO) test -race -count=1 ./...

# Benchmarks report throughput beside a ceiling measured in the same run.
bench: chdb
	$(GO) test -run '^$$' -bench . -benchtime 1x -benchmem ./internal/api/ ./internal/store/... ./internal/correlate/
	$(GO) test -run '^$$' -bench . -benchmem ./internal/ingest/ ./internal/scenario/

# What changed? (2h) and impact (1h, one service and all twelve) over a
# store of 10M errors, 50M log lines, 100k metric points and 10k changes
# (minutes and GBs of disk).
bench-big: chdb
	CORRELATOR_BIG_BENCH=1 $(GO) test -run '^$$' -bench BigStore -benchtime 1x -timeout 60m ./internal/correlate/

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf bin
