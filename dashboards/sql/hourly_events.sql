-- Landing per hour (last 48 hours of data): events and users loaded into
-- ClickHouse per event-time hour, the Kafka partitions seen, and how long
-- after the hour ended it was (last) loaded. A missing hour, or a load
-- delay far above the allowed lateness, is what "re-load an hour" fixes.
SELECT
    _hour AS hour,
    count() AS events,
    uniqExact(user_id) AS users,
    uniqExact(_partition) AS partitions,
    intDiv(max(_ingest_time), 1000) - toInt64(toUInt32(_hour)) - 3600 AS load_delay_seconds
FROM events
WHERE _hour >= (SELECT max(_hour) FROM events) - 48 * 3600
GROUP BY _hour
ORDER BY _hour
