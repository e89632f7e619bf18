# Chancery. `make help` lists the targets.

GO        ?= go
BIN       ?= bin/chancery
FUZZTIME  ?= 10s
BENCHTIME ?= 1s

# The SigV4 conformance suite sits beside the repository in a Chancery checkout; tests
# skip it (or fail under CHANCERY_TEST_REQUIRE=all) when it is not found.
SIGV4_SUITE := $(abspath ../shared/testdata/sigv4-suite/v4)
ifneq ($(wildcard $(SIGV4_SUITE)),)
export CHANCERY_SIGV4_SUITE ?= $(SIGV4_SUITE)
endif

.PHONY: help build run test fmt-check vet bench fuzz clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## Build bin/chancery
	$(GO) build -o $(BIN) ./cmd/chancery

run: build ## Serve everything on loopback with embedded state in ./.chancery
	./$(BIN) serve --dev

test: fmt-check vet ## gofmt check, go vet, and every test with the race detector
	$(GO) test -race ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

bench: ## Every benchmark, with allocations
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./...

fuzz: ## Each fuzz target for FUZZTIME (default 10s)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

clean: ## Remove the build output (not .chancery state)
	rm -rf bin
