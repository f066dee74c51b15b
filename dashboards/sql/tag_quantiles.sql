-- Tag distribution over time: per snapshot (newest 30), the users and the
-- median / p90 / p99 of the numeric count tags, and the share of users with
-- an empty mode tag. A sudden jump between snapshots points at a producer
-- change or a catalog change (catalog_hash).
-- Catalog: taobao.
SELECT
    snapshot,
    count() AS users,
    quantileExact(0.5)(pv_24h) AS pv_24h_p50,
    quantileExact(0.9)(pv_24h) AS pv_24h_p90,
    quantileExact(0.99)(pv_24h) AS pv_24h_p99,
    quantileExact(0.5)(items_seen_7d) AS items_seen_7d_p50,
    quantileExact(0.99)(items_seen_7d) AS items_seen_7d_p99,
    round(100 * countIf(isNull(top_category_7d)) / count(), 2) AS pct_no_top_category_7d,
    uniqExact(catalog_hash) AS catalog_versions
FROM profiles
WHERE snapshot >= (SELECT max(snapshot) FROM profiles) - 30 * 86400
GROUP BY snapshot
ORDER BY snapshot DESC
LIMIT 30
