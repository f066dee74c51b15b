-- Tag distribution (categorical): the 20 most common values of
-- top_category_7d in the newest snapshot, with their share of users.
-- NULL means no events in the tag's 7-day window.
-- Catalog: taobao. For another tag, replace top_category_7d (3 places).
SELECT
    top_category_7d AS value,
    count() AS users,
    round(100 * count() / (SELECT count() FROM profiles_latest), 2) AS pct_users
FROM profiles_latest
GROUP BY top_category_7d
ORDER BY users DESC, value ASC
LIMIT 20
