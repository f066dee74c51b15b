-- Tag distribution (numeric): users of the newest snapshot by pv_24h
-- (page views in the last 24 hours) in fixed buckets.
-- Catalog: taobao. For another count tag, replace pv_24h (5 places).
SELECT
    multiIf(pv_24h = 0, '0', pv_24h < 5, '1-4', pv_24h < 20, '5-19', pv_24h < 100, '20-99', '100+') AS bucket,
    count() AS users,
    min(pv_24h) AS bucket_min
FROM profiles_latest
GROUP BY bucket
ORDER BY bucket_min
