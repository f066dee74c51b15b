#!/usr/bin/env bash
# ui-shot: render the status page (/ui) of a real "portrait run" in headless
# Chromium while events flow through it, check that the page loaded and
# shows a non-zero throughput, and write a screenshot.
#
#   dashboards/ui-shot.sh [OUT.png]     (default bin/ui-shot.png)
#
# It builds bin/portrait, starts "bin/portrait run" in the background on the
# embedded Kafka broker with a temporary warehouse and state, on free
# loopback ports (read back from the "run:" log line), no ClickHouse and no
# scheduled jobs; produces testdata/taobao/userbehavior-stream-96k.csv to it
# at 2000 events/s in the background; waits until /ui/status.json reports a
# non-zero throughput; then renders /ui twice in headless Chromium: once to
# dump the DOM (checked: data-ready, throughput shown > 0), once for the
# screenshot. Everything it started is stopped on exit; it exits non-zero
# with a message naming the failed check. About 15 seconds.
#
# Needs Debian's chromium (apt-get install -y chromium) and curl.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH"
# The run below has no ClickHouse; a PORTRAIT_CLICKHOUSE in the caller's
# environment would override the config and make it connect to one.
unset PORTRAIT_CLICKHOUSE
# shellcheck source=../deploy/local/run-bg.sh
. deploy/local/run-bg.sh

out="${1:-bin/ui-shot.png}"
go="${GO:-go}"
catalog=schemas/catalogs/taobao.yaml
sample=testdata/taobao/userbehavior-stream-96k.csv
rate=2000

die() {
	echo "ui-shot: $*" >&2
	exit 1
}

chrome="$(command -v chromium || command -v chromium-browser || true)"
[[ -n "$chrome" ]] || die "chromium not found: apt-get install -y chromium"
command -v curl >/dev/null || die "curl not found: apt-get install -y curl"

"$go" build -o bin/portrait ./cmd/portrait || die "building bin/portrait failed"

tmp="$(mktemp -d)"
produce_pid=""
cleanup() {
	stop_pid "$produce_pid"
	stop_pid "$RUN_PID"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ portrait run
cat >"$tmp/portrait.yaml" <<EOF
# Written by dashboards/ui-shot.sh: a throwaway portrait run for the screenshot.
catalog: ${catalog}
warehouse: ${tmp}/warehouse
# Port 0: the kernel picks free loopback ports, read back from the "run:" log line.
embedded_kafka:
  addr: 127.0.0.1:0
  partitions: 4
speed:
  state_dir: ${tmp}/speed
landing:
  roll_age: 2s
  idle_timeout: 2s
  close_interval: 1s
# No token: the browser loads /ui without an Authorization header.
api:
  listen: 127.0.0.1:0
jobs:
  recompute: {enabled: false}
  reconcile: {enabled: false}
  load-events: {enabled: false}
  compact: {enabled: false}
  retention: {enabled: false}
EOF
run_bg "$tmp/portrait.yaml" "$tmp/run.log"
api=$RUN_API
kafka=$RUN_KAFKA
url="http://$api/ui"

# ----------------------------------------------------------------- produce
bin/portrait produce --catalog "$catalog" --brokers "$kafka" --rate "$rate" "$sample" >"$tmp/produce.log" 2>&1 &
produce_pid=$!

# throughput: events/s consumed, as /ui/status.json reports it.
throughput() {
	curl -fsS "$url/status.json" | sed -n 's/.*"throughput":{"consumed":\([0-9.eE+-]*\).*/\1/p'
}
nonzero_throughput() {
	local v
	v=$(throughput) || return 1
	[[ -n "$v" ]] && awk -v v="$v" 'BEGIN { exit !(v > 0) }'
}
producing() {
	kill -0 "$produce_pid" 2>/dev/null && return 0
	cat "$tmp/produce.log" >&2
	die "portrait produce stopped before the page was rendered"
}
deadline=$((SECONDS + 30))
until nonzero_throughput; do
	producing
	if ((SECONDS >= deadline)); then
		curl -fsS "$url/status.json" >&2 || true
		tail -20 "$RUN_LOG" >&2
		die "/ui/status.json reports no throughput after 30 s of producing at ${rate}/s"
	fi
	sleep 0.5
done
echo "ui-shot: portrait run on http://$api, producing ${rate} events/s; status.json throughput $(throughput) events/s"

# ------------------------------------------------------------------ render
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
	--disable-sync --no-first-run --hide-scrollbars --virtual-time-budget=10000)

# The page polls status.json every 2 s (virtual time) and draws its charts
# from what it got; the budget lets it poll a few times.
dom="$("$chrome" "${flags[@]}" --user-data-dir="$(mktemp -d -p "$tmp")" --dump-dom "$url" 2>"$tmp/chrome-dom.log")" ||
	{ cat "$tmp/chrome-dom.log" >&2; die "chromium --dump-dom $url failed"; }
if ! grep -q 'data-ready="true"' <<<"$dom"; then
	cat "$tmp/chrome-dom.log" >&2
	die "the page did not load its status (no data-ready=\"true\" in the DOM); error shown: $(sed -n 's/.*id="error"[^>]*>\([^<]*\)<.*/\1/p' <<<"$dom")"
fi
shown="$(sed -n 's/.*id="throughput-value">\([^<]*\)<.*/\1/p' <<<"$dom")"
# fmtNum in page.html: 1234 → "1.2k", 0 → "0", 0.04 → "0.0".
if ! [[ "$shown" =~ ^[0-9]+(\.[0-9]+)?[kMG]?$ && "$shown" =~ [1-9] ]]; then
	die "the page shows throughput '$shown', want a non-zero number"
fi
producing

mkdir -p "$(dirname "$out")"
rm -f "$out"
"$chrome" "${flags[@]}" --user-data-dir="$(mktemp -d -p "$tmp")" --screenshot="$(realpath -m "$out")" \
	--window-size=1280,900 "$url" 2>"$tmp/chrome-shot.log" >/dev/null ||
	{ cat "$tmp/chrome-shot.log" >&2; die "chromium --screenshot $url failed"; }
[[ -s "$out" ]] || { cat "$tmp/chrome-shot.log" >&2; die "no screenshot written to $out"; }
[[ "$(head -c 8 "$out" | od -An -tx1 | tr -d ' \n')" == 89504e470d0a1a0a ]] || die "$out is not a PNG"

# ------------------------------------------------------------------- stop
stop_pid "$produce_pid"
produce_pid=""
stop_run_cleanly
echo "ui-shot: $out (throughput shown: $shown events/s consumed)"
