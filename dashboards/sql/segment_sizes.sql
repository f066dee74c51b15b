-- Segment sizes: per snapshot (newest 30), the users in each rule tag
-- (boolean segment) and their share.
-- Catalog: taobao (rule tags buyer_7d, window_shopper).
SELECT
    snapshot,
    count() AS users,
    sum(buyer_7d) AS n_buyer_7d,
    sum(window_shopper) AS n_window_shopper,
    round(100 * sum(buyer_7d) / count(), 2) AS pct_buyer_7d,
    round(100 * sum(window_shopper) / count(), 2) AS pct_window_shopper
FROM profiles
WHERE snapshot >= (SELECT max(snapshot) FROM profiles) - 30 * 86400
GROUP BY snapshot
ORDER BY snapshot DESC
LIMIT 30
