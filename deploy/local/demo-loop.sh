#!/usr/bin/env bash
# The second part of `make demo` (deploy/local/demo.sh calls it last): the
# whole lambda loop of portrait in one running process on the Taobao
# sample.
#
#   portrait run (embedded Kafka, speed layer, landing, scheduler, API)
#   → produce the sample → speed layer and landing catch up, hours close
#   → recompute a snapshot → reconcile: 0 drift
#   → inject late and duplicate events → recompute the same cutoff
#   → reconcile: drift, attributed to its cause → repair → 0 drift
#   → a lookup, SQL over profiles_latest → SIGTERM.
#
# It expects bin/portrait built and the local ClickHouse up (demo.sh does
# both); run alone it builds bin/portrait when there is none and starts
# ClickHouse. Needs curl. About 20 seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH="/usr/local/go/bin:$PATH"
# shellcheck source=run-bg.sh
. deploy/local/run-bg.sh

step() { printf '\n\033[1m==> loop [%3ds]: %s\033[0m\n' "$SECONDS" "$*"; }
say() { printf '    %s\n' "$*"; }
die() {
	printf '\033[31mdemo-loop: %s\033[0m\n' "$*" >&2
	exit 1
}

CATALOG=schemas/catalogs/taobao.yaml
DIR=${PORTRAIT_DEMO_LOOP_DIR:-.local/demo/loop}
CH_PORT=${PORTRAIT_CH_PORT:-19000}
CH_DB=${PORTRAIT_DEMO_LOOP_DB:-portrait_loop}
CH="clickhouse://default@127.0.0.1:${CH_PORT}/${CH_DB}"
SAMPLE=testdata/taobao/userbehavior-users-114.csv
# The sample runs to 2017-12-03T15:59:28Z: every hour before this cutoff
# closes as soon as the landing watermark reaches the end of the sample.
CUTOFF=2017-12-03T00:00:00Z
TOKEN=demo-loop-token
WAREHOUSE=$DIR/warehouse
LOG=$DIR/run.log

if [[ ! -x bin/portrait ]]; then
	go build -o bin/portrait ./cmd/portrait
fi
deploy/local/clickhouse.sh start >/dev/null

# ---------------------------------------------------------------- 1. run
step "starting portrait run in the background (embedded Kafka, API with a token, ClickHouse database ${CH_DB}, warehouse and state in ${DIR})"
rm -rf "$DIR"
mkdir -p "$DIR"
clickhouse-client --port "$CH_PORT" -q "DROP DATABASE IF EXISTS ${CH_DB}"
cat >"$DIR/portrait.yaml" <<EOF
# Written by deploy/local/demo-loop.sh: portrait run for the demo loop.
# Everything not set here keeps its default (portrait config print-defaults).
catalog: ${CATALOG}
warehouse: ${WAREHOUSE}
clickhouse: ${CH}
# Port 0: the kernel picks free loopback ports; the script reads them back
# from the "run:" line of the log.
embedded_kafka:
  addr: 127.0.0.1:0
  partitions: 4
speed:
  state_dir: ${DIR}/speed
  # Buckets kept beyond the longest window (7d). The sample spans 9.3 days
  # (2017-11-24T08:45Z to 2017-12-03T16:00Z) and a file grouped by user is
  # not in event-time order: with the default 24h, a user's first days
  # would already be late behind the previous user's last. 72h keeps every
  # sample event; only events older than 2017-11-23T16:00Z are late.
  grace: 72h
  checkpoint_interval: 500ms
landing:
  # Commit files quickly and close the hours as soon as the watermark
  # (event time) passes them: the sample is replayed, not live.
  roll_age: 1s
  idle_timeout: 2s
  allowed_lateness: 1m
  close_interval: 1s
api:
  listen: 127.0.0.1:0
  token: ${TOKEN}
# The demo runs every job by hand; none runs on the wall clock meanwhile.
jobs:
  recompute: {enabled: false}
  reconcile: {enabled: false}
  load-events: {enabled: false}
  compact: {enabled: false}
  retention: {enabled: false}
EOF
say "config: $DIR/portrait.yaml; log: $LOG"
trap 'stop_pid "$RUN_PID"' EXIT
trap 'exit 130' INT TERM
run_bg "$DIR/portrait.yaml" "$LOG"
API=$RUN_API
KAFKA=$RUN_KAFKA
say "listening: API http://${API}, embedded Kafka ${KAFKA}"
say "ready: $(curl -fsS "http://${API}/readyz")"

# metric NAME: the sum of a metric's series on /metrics.
metric() {
	curl -fsS -H "Authorization: Bearer ${TOKEN}" "http://${API}/metrics" |
		awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d\n", s }'
}
# caught_up N: the speed layer handled N events (applied, or set aside as
# late or duplicate) and the landing wrote N rows to the warehouse.
caught_up() {
	local m
	m=$(curl -fsS -H "Authorization: Bearer ${TOKEN}" "http://${API}/metrics") || return 1
	local speed landed
	speed=$(awk '$1 ~ /^portrait_speed_events_(applied|late|duplicate)_total$/ { s += $2 } END { printf "%d", s }' <<<"$m")
	landed=$(awk '$1 == "portrait_landing_rows_total" { printf "%d", $2 }' <<<"$m")
	((speed >= $1 && landed >= $1))
}
# hours_closed: every events hour before the cutoff has a _SUCCESS marker
# that lists all its files (a straggler re-opens an hour until the next
# closing pass rewrites its marker).
hours_closed() {
	local d f
	for d in "$WAREHOUSE"/events/dt=*/hour=*; do
		[[ -d $d ]] || continue
		local hour
		hour=$(sed -E 's|.*/dt=([0-9-]+)/hour=([0-9]+)$|\1T\2:00:00Z|' <<<"$d")
		[[ $hour < $CUTOFF ]] || continue
		[[ -f $d/_SUCCESS ]] || return 1
		for f in "$d"/part-*.parquet; do
			grep -q "\"$(basename "$f")\"" "$d/_SUCCESS" || return 1
		done
	done
}
status() { bin/portrait status --api "$API" --token "$TOKEN" 2>/dev/null | sed -n '1,6p' | sed 's/^/    /' || true; }

# ------------------------------------------------------------ 2. produce
SENT=$(grep -c . "$SAMPLE")
step "producing ${SAMPLE} (${SENT} events of 114 users) to the embedded Kafka"
bin/portrait produce --catalog "$CATALOG" --brokers "$KAFKA" "$SAMPLE" 2>&1 | tail -1 | sed 's/^/    /'
say "waiting for the speed layer and the landing to consume all ${SENT} events …"
wait_for "speed layer and landing to catch up" 60 caught_up "$SENT"
say "… and for every events hour before ${CUTOFF} to close"
wait_for "the hours before ${CUTOFF} to close" 60 hours_closed
say "portrait status (DEGRADED is expected here: the sample's event time is 2017, and freshness"
say "compares the speed watermark with the wall clock):"
status

# ---------------------------------------------------- 3. recompute, reconcile
recompute() {
	bin/portrait jobs run recompute --config "$DIR/portrait.yaml" --retries 0 \
		--catalog "$CATALOG" --warehouse "$WAREHOUSE" --clickhouse "$CH" --cutoff "$CUTOFF" 2>&1 |
		{ grep -v '^time=' || true; } | sed 's/^/    /'
}
reconcile() {
	bin/portrait reconcile --catalog "$CATALOG" --warehouse "$WAREHOUSE" --api "$API" --token "$TOKEN" --snapshot latest "$@" |
		tee "$DIR/reconcile.out"
}
step "recomputing the batch snapshot at ${CUTOFF} (portrait jobs run recompute, same warehouse; hours closed)"
recompute
step "reconciling the snapshot with the speed layer's values as of ${CUTOFF} (clean data: expect 0 drift)"
reconcile

# drifting: the users the last reconcile of the latest snapshot found
# drifting (the report written beside the snapshot).
drifting() { sed -n 's/^users: .*, drifting \([0-9]*\)$/\1/p' "$DIR/reconcile.out"; }
[[ $(drifting) == 0 ]] || die "clean data drifted: $(drifting) users (see the table above)"

# ----------------------------------------------- 4. late and duplicate events
step "injecting late and duplicate events"
LATE_CSV=$DIR/late.csv
cat >"$LATE_CSV" <<EOF
999477,5000001,4756105,pv,$(date -u -d 2017-11-20T09:15:00Z +%s)
999477,5000002,4756105,buy,$(date -u -d 2017-11-20T09:45:00Z +%s)
999478,5000003,2355072,pv,$(date -u -d 2017-11-21T10:30:00Z +%s)
999479,5000004,982926,cart,$(date -u -d 2017-11-22T11:00:00Z +%s)
EOF
say "late: $(wc -l <"$LATE_CSV") events of users 999477, 999478 and 999479 dated 2017-11-20 to 11-22. The speed"
say "layer keeps the 7d window + 72h grace behind its watermark (2017-12-03T16:00Z), i.e. from"
say "2017-11-23T16:00Z: it counts older events late and leaves them to the batch layer. The landing"
say "writes them to the warehouse as stragglers, in hours older than any it held."
DUP_USER=999864
DUP_CSV=$DIR/duplicates.csv
lo=$(date -u -d 2017-12-02T16:00:00Z +%s)
hi=$(date -u -d 2017-12-03T00:00:00Z +%s)
awk -F, -v u="$DUP_USER" -v lo="$lo" -v hi="$hi" '$1 == u && $4 == "pv" && $5 >= lo && $5 < hi' "$SAMPLE" | head -5 >"$DUP_CSV"
NDUP=$(wc -l <"$DUP_CSV")
say "duplicates: ${NDUP} pv events of user ${DUP_USER} from 2017-12-02 16:00-24:00Z sent again: they land"
say "in hours that are closed already, which re-open until the next closing pass."
pv_24h() { sed -n 's/.*"pv_24h": *\([0-9]*\).*/\1/p'; }
batch_pv() { bin/portrait profiles get --warehouse "$WAREHOUSE" "$DUP_USER" | pv_24h; }
live_pv() { bin/portrait profiles get --api "$API" --token "$TOKEN" "$DUP_USER" | pv_24h; }
PV_BATCH_BEFORE=$(batch_pv)
PV_LIVE_BEFORE=$(live_pv)
REOPENED_BEFORE=$(metric portrait_landing_hours_reopened_total)
bin/portrait produce --catalog "$CATALOG" --brokers "$KAFKA" "$LATE_CSV" "$DUP_CSV" 2>&1 | tail -1 | sed 's/^/    /'
TOTAL=$((SENT + $(wc -l <"$LATE_CSV") + NDUP))
wait_for "speed layer and landing to catch up" 30 caught_up "$TOTAL"
say "speed layer: $(metric portrait_speed_events_late_total) late, $(metric portrait_speed_events_duplicate_total) duplicate (same event id) events"
wait_for "the re-opened hours to close again" 30 hours_closed
say "landing: hours re-opened and closed again: $((${REOPENED_BEFORE:-0} + 0)) → $(metric portrait_landing_hours_reopened_total); new hours of the late events:"
(cd "$WAREHOUSE/events" && ls -d dt=2017-11-2[0-2]/hour=* | sed 's/^/      /')

step "recomputing the same cutoff ${CUTOFF} (every hour before it is closed again)"
recompute
step "reconciling again: the late events are in the batch snapshot, not in the speed layer"
reconcile
[[ $(drifting) == 3 ]] || die "expected the 3 users with late events to drift, got $(drifting)"

say "duplicates: user ${DUP_USER}'s pv_24h went from ${PV_BATCH_BEFORE} to $(batch_pv) in the batch snapshot (24h before ${CUTOFF})"
say "and from ${PV_LIVE_BEFORE} to $(live_pv) in the speed layer (24h before its watermark): +${NDUP} in both, so no drift."
say "The taobao catalog has no event-id field (events.id: \"\"; the data set has none), so neither"
say "layer can tell a re-sent event from a new one: both count it again. That is honest double"
say "counting, not drift, and reconcile cannot see it. With an id field (schemas/catalogs/"
say "ecommerce.yaml, id: event_id) the speed layer skips an id it already applied (counted in"
say "portrait_speed_events_duplicate_total, cause \"duplicate\") and the batch de-duplicates by id."

# ------------------------------------------------------------- 5. repair
step "repairing: the drifting users' speed state is rebuilt from the warehouse (reconcile --repair)"
reconcile --repair
step "reconciling once more: 0 drift"
reconcile
[[ $(drifting) == 0 ]] || die "still drifting after the repair: $(drifting) users"

# ---------------------------------------------------- 6. lookup and SQL
step "a lookup on the running API: user 999477, repaired (first_seen is its late event)"
bin/portrait profiles get --api "$API" --token "$TOKEN" 999477
say "live values as of the speed watermark; lifetime tags are the snapshot's base (\"snapshot\") merged"
say "with the speed layer's partials since its cutoff: every reconcile rebases them on the newest snapshot."

step "SQL in ClickHouse (database ${CH_DB}): profiles_latest, tag_drift, job_runs, events"
wait_for "the landing to load the closed hours into ClickHouse" 30 \
	test "$(metric portrait_landing_reload_queue_hours)" = 0
chq() { clickhouse-client --port "$CH_PORT" --database "$CH_DB" --format PrettyCompact -q "$1"; }
chq "
SELECT
    count()                                              AS users,
    countIf(buyer_7d = 1)                                AS buyers_7d,
    countIf(window_shopper = 1)                          AS window_shoppers,
    toDateTime(intDiv(min(first_seen), 1000), 'UTC')     AS first_seen_min,
    toDateTime(intDiv(max(last_seen), 1000), 'UTC')      AS last_seen_max
FROM profiles_latest"
chq "
SELECT user_id, toDateTime(intDiv(first_seen, 1000), 'UTC') AS first_seen, pv_24h, buys_7d, last_buy_cat
FROM profiles_latest
WHERE user_id IN (999477, 999478, 999479, ${DUP_USER})
ORDER BY user_id"
say "tag_drift: every reconcile inserts one row per tag; the rows with drift:"
chq "
SELECT snapshot, tag, different, only_batch, only_speed, causes
FROM tag_drift
WHERE different + only_batch + only_speed > 0
ORDER BY computed_at, tag"
chq "SELECT count() AS tag_drift_rows, countIf(different + only_batch + only_speed > 0) AS with_drift FROM tag_drift"
say "job runs (job_runs) and events loaded by the landing (events):"
chq "SELECT job, status, attempt, rows FROM job_runs ORDER BY started"
chq "SELECT count() AS events, min(toDateTime(intDiv(ts, 1000), 'UTC')) AS oldest, max(toDateTime(intDiv(ts, 1000), 'UTC')) AS newest FROM events"
OPEN_HOUR=$(awk -F, -v lo="$(date -u -d 2017-12-03T15:00:00Z +%s)" '$5 >= lo' "$SAMPLE" | wc -l)
say "events holds the closed hours: the ${TOTAL} events sent but the ${OPEN_HOUR} of 2017-12-03 15:00Z, an hour that"
say "stays open because the landing watermark (15:59:28) has not passed its end plus the allowed lateness."

# ------------------------------------------------------------- 7. stop
step "stopping portrait run with SIGTERM (graceful: jobs stop, speed checkpoints, landing flushes)"
stop_run_cleanly
say "portrait run stopped cleanly; its log: $LOG"
