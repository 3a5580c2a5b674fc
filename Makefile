# umeeting_exporter: `make test` runs the whole test suite; `make build` builds the binary;
# `make release` the release archives.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X github.com/prometheus/common/version.Version=$(VERSION) \
             -X github.com/prometheus/common/version.Revision=$(REVISION) \
             -X github.com/prometheus/common/version.Branch=$(BRANCH) \
             -X github.com/prometheus/common/version.BuildUser=$(shell whoami)@$(shell hostname) \
             -X github.com/prometheus/common/version.BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

.PHONY: all build release test test-deps vet unit rules bench fmt-check

all: build

build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o umeeting_exporter .

# Release archives for these platforms into .tarballs/, with sha256sums.txt
# (see scripts/release.sh): binary, README, docs, config.yml, dashboards,
# rules and the systemd unit. VERSION=1.2.0 make release names a release.
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64 darwin/arm64 windows/amd64
release:
	@GO="$(GO)" VERSION="$(VERSION)" LDFLAGS="$(LDFLAGS)" scripts/release.sh $(RELEASE_PLATFORMS)

# The whole suite: static checks, unit and fuzz-seed tests with the race
# detector, end-to-end tests of the real binary (simulator, real Prometheus),
# and the alert rules with promtool, on Prometheus 2.42 and 3.x.
test: test-deps fmt-check vet rules unit

test-deps:
	@scripts/test-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on: $$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 45m ./...

# The rules on both Prometheus releases the project is tested with: Debian's
# 2.42 (PATH) and the pinned 3.x that scripts/test-deps.sh builds.
rules:
	@set -e; for tool in promtool "$$(scripts/test-deps.sh --dir)/promtool"; do \
		echo "== $$tool"; \
		$$tool check rules alerts/*.rules.yml; \
		$$tool test rules alerts/*_test.yml; \
	done

# Benchmarks whose results are kept in BENCHMARKS.md.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 10x -count 3 ./umeeting/... ./store/... ./collector/... ./poller/...
	$(GO) test -run '^$$' -bench BenchmarkExport90Days -benchtime 1x -timeout 30m ./history/
