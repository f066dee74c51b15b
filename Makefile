# portrait: build, test and run the local stack.
#
#   make build     build bin/portrait
#   make test      start the local ClickHouse, then run every test with -race
#   make lint      gofmt, go vet, promtool on alert rules
#   make bench     run the benchmark suite (portrait bench)
#   make demo      run the end-to-end demo (deploy/local/demo.sh)
#   make ch-start / ch-stop   the local ClickHouse (deploy/local/clickhouse.sh)
#   make clean     remove build output; distclean also stops ClickHouse and drops .local/

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
export PATH := /usr/local/go/bin:$(PATH)

GO ?= go
PORTRAIT_CH_PORT ?= 19000
PORTRAIT_TEST_CLICKHOUSE ?= 127.0.0.1:$(PORTRAIT_CH_PORT)
export PORTRAIT_CH_PORT PORTRAIT_TEST_CLICKHOUSE

CLICKHOUSE := deploy/local/clickhouse.sh

.PHONY: build test soak lint bench demo run ui-shot ch-start ch-stop clean distclean

build:
	$(GO) build -o bin/portrait ./cmd/portrait

test: ch-start
	$(GO) test -race -count=1 -timeout 20m ./...

# The crash tests as a marathon: SOAK_KILLS kills of the speed layer and of
# the landing consumer (make test runs 10 and 12), events scaled to match.
SOAK_KILLS ?= 200
soak: ch-start
	PORTRAIT_SOAK_KILLS=$(SOAK_KILLS) $(GO) test -race -count=1 -timeout 120m -v \
		-run 'TestCrashRecovery|TestCrashExactlyOnce' ./stream/ ./warehouse/landing/

lint:
	@unformatted="$$(gofmt -l .)"; \
	if [[ -n "$$unformatted" ]]; then echo "gofmt -w needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	@shopt -s nullglob; rules=(dashboards/*.rules.yml); \
	if (( $${#rules[@]} )); then echo "promtool check rules $${rules[*]}"; promtool check rules "$${rules[@]}"; \
	else echo "no dashboards/*.rules.yml to check"; fi

bench: ch-start
	$(GO) run ./cmd/portrait bench --clickhouse clickhouse://127.0.0.1:$(PORTRAIT_CH_PORT)/portrait_bench

demo:
	deploy/local/demo.sh

run: ## the whole system on the embedded broker (Ctrl-C stops it)
	$(GO) run ./cmd/portrait run --config portrait.example.yaml

ui-shot:
	dashboards/ui-shot.sh bin/ui-shot.png

ch-start:
	$(CLICKHOUSE) start

ch-stop:
	$(CLICKHOUSE) stop

clean:
	rm -rf bin
	find . -name '*.test' -type f -not -path './.local/*' -delete

distclean: clean ch-stop
	rm -rf .local
