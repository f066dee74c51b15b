-- Daily actives: per event-time day (UTC) of the last 30 days of data,
-- distinct users, distinct buyers, and events by behavior. Reads only the
-- _hour partitions of those days.
-- Catalog: taobao (behavior enum pv, buy, cart, fav).
SELECT
    toDate(_hour) AS day,
    uniqExact(user_id) AS active_users,
    uniqExactIf(user_id, behavior = 'buy') AS buyers,
    count() AS events,
    countIf(behavior = 'pv') AS pv,
    countIf(behavior = 'cart') AS cart,
    countIf(behavior = 'fav') AS fav,
    countIf(behavior = 'buy') AS buy
FROM events
WHERE _hour >= (SELECT max(_hour) FROM events) - 30 * 86400
GROUP BY day
ORDER BY day
