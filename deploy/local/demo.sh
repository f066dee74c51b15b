#!/usr/bin/env bash
# The end-to-end demo behind `make demo`: import the Taobao UserBehavior
# sample into a fresh warehouse, recompute every profile with the local
# Arrow engine, publish the snapshot to the local ClickHouse, recompute it
# again inside ClickHouse with the SQL engine, and query it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH="/usr/local/go/bin:$PATH"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

CATALOG=schemas/catalogs/taobao.yaml
WAREHOUSE=${PORTRAIT_DEMO_WAREHOUSE:-.local/demo/warehouse}
CH_PORT=${PORTRAIT_CH_PORT:-19000}
CH_DB=${PORTRAIT_DEMO_DB:-portrait_demo}
CH="clickhouse://default@127.0.0.1:${CH_PORT}/${CH_DB}"
CUTOFF=2017-12-03T00:00:00Z

step "building bin/portrait"
go build -o bin/portrait ./cmd/portrait

step "starting the local ClickHouse (Debian's clickhouse-server, loopback, port ${CH_PORT})"
deploy/local/clickhouse.sh start

step "validating the catalog ${CATALOG}"
bin/portrait catalog validate "$CATALOG"

step "importing the Taobao sample into a fresh warehouse (${WAREHOUSE})"
rm -rf "$WAREHOUSE"
clickhouse-client --port "$CH_PORT" -q "DROP DATABASE IF EXISTS ${CH_DB}"
bin/portrait import --catalog "$CATALOG" --warehouse "$WAREHOUSE" --clickhouse "$CH" testdata/taobao/*.csv
echo "the truncated last record of userbehavior-stream-96k.csv is real bad input; it was rejected, not dropped:"
cat "$WAREHOUSE"/_rejects/*.jsonl

step "importing the same files again: a no-op"
bin/portrait import --catalog "$CATALOG" --warehouse "$WAREHOUSE" testdata/taobao/*.csv

step "recomputing profiles as of ${CUTOFF} with the local Arrow engine, publishing to ClickHouse"
bin/portrait recompute --catalog "$CATALOG" --warehouse "$WAREHOUSE" --cutoff "$CUTOFF" --clickhouse "$CH"

DEMO_DIR=$(dirname "$WAREHOUSE")
bin/portrait profiles dump --warehouse "$WAREHOUSE" >"$DEMO_DIR/profiles-local.jsonl"

step "the same cutoff with the ClickHouse SQL engine (runs inside ClickHouse over its events table)"
bin/portrait recompute --catalog "$CATALOG" --warehouse "$WAREHOUSE" --cutoff "$CUTOFF" --engine clickhouse --clickhouse "$CH"
bin/portrait profiles dump --warehouse "$WAREHOUSE" >"$DEMO_DIR/profiles-clickhouse.jsonl"
if cmp -s "$DEMO_DIR/profiles-local.jsonl" "$DEMO_DIR/profiles-clickhouse.jsonl"; then
	echo "the two engines agree on all $(wc -l <"$DEMO_DIR/profiles-local.jsonl") profiles, value for value"
else
	echo "the engines DISAGREE: diff $DEMO_DIR/profiles-local.jsonl $DEMO_DIR/profiles-clickhouse.jsonl" >&2
	exit 1
fi

step "three profiles from the snapshot (all of them: $DEMO_DIR/profiles-local.jsonl)"
head -3 "$DEMO_DIR/profiles-local.jsonl"

step "one profile by id"
bin/portrait profiles get --warehouse "$WAREHOUSE" 1

step "SQL analytics in ClickHouse over profiles_latest"
clickhouse-client --port "$CH_PORT" --database "$CH_DB" --format PrettyCompact -q "
SELECT
    count()                                  AS users,
    countIf(buyer_7d = 1)                    AS buyers_7d,
    countIf(window_shopper = 1)              AS window_shoppers,
    round(avg(pv_24h), 2)                    AS avg_pv_24h,
    round(quantile(0.9)(items_seen_7d), 1)   AS p90_items_seen_7d
FROM profiles_latest"
clickhouse-client --port "$CH_PORT" --database "$CH_DB" --format PrettyCompact -q "
SELECT top_category_7d, count() AS users
FROM profiles_latest
WHERE top_category_7d IS NOT NULL
GROUP BY top_category_7d
ORDER BY users DESC, top_category_7d
LIMIT 5"

step "done"
echo "warehouse: ${WAREHOUSE}; ClickHouse database: ${CH_DB} on 127.0.0.1:${CH_PORT} (clickhouse-client --port ${CH_PORT} -d ${CH_DB})"
deploy/local/demo-loop.sh  # part 2: the lambda loop in one running `portrait run`
