#!/usr/bin/env bash
# ui-shot: render the status page (serving/ui) in headless Chromium against
# a test server fed by a fake StatusSource, check that it loaded and shows a
# non-zero throughput, and write a screenshot.
#
#   dashboards/ui-shot.sh [OUT.png]     (default bin/ui-shot.png)
#
# Needs Debian's chromium (apt-get install -y chromium). PORTRAIT_UI_PORT
# picks the port (default 18480).
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-bin/ui-shot.png}"
port="${PORTRAIT_UI_PORT:-18480}"
addr="127.0.0.1:$port"
url="http://$addr/ui"
go="${GO:-go}"

chrome="$(command -v chromium || command -v chromium-browser || true)"
if [[ -z "$chrome" ]]; then
  echo "ui-shot: chromium not found: apt-get install -y chromium" >&2
  exit 1
fi

tmp="$(mktemp -d)"
server=""
cleanup() {
  if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

"$go" test -c -o "$tmp/ui.test" ./serving/ui
PORTRAIT_UI_SERVE="$addr" PORTRAIT_UI_SERVE_FOR=120s "$tmp/ui.test" -test.run '^TestServeFake$' -test.v >"$tmp/server.log" 2>&1 &
server=$!
for _ in $(seq 1 50); do
  if curl -fsS "$url/status.json" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$tmp/server.log" >&2; exit 1; fi
  sleep 0.2
done
curl -fsS "$url/status.json" >/dev/null

flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
       --disable-sync --no-first-run --hide-scrollbars --virtual-time-budget=20000)

# The page polls status.json every 2 s and draws its charts from what it got.
dom="$("$chrome" "${flags[@]}" --user-data-dir="$(mktemp -d -p "$tmp")" --dump-dom "$url" 2>"$tmp/chrome-dom.log")"
if ! grep -q 'data-ready="true"' <<<"$dom"; then
  echo "ui-shot: the page did not load its status (no data-ready)" >&2
  cat "$tmp/chrome-dom.log" >&2
  exit 1
fi
throughput="$(sed -n 's/.*id="throughput-value">\([^<]*\)<.*/\1/p' <<<"$dom")"
if [[ -z "$throughput" || "$throughput" == "0" || "$throughput" == "–" ]]; then
  echo "ui-shot: throughput shown is '$throughput', want non-zero" >&2
  exit 1
fi

mkdir -p "$(dirname "$out")"
"$chrome" "${flags[@]}" --user-data-dir="$(mktemp -d -p "$tmp")" --screenshot="$(realpath -m "$out")" \
  --window-size=1280,900 "$url" 2>"$tmp/chrome-shot.log"
[[ -s "$out" ]] || { echo "ui-shot: no screenshot written" >&2; cat "$tmp/chrome-shot.log" >&2; exit 1; }
echo "ui-shot: $out (throughput shown: $throughput events/s)"
