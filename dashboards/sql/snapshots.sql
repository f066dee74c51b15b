-- Snapshots in ClickHouse: the newest 20 snapshots of profiles with their
-- users and catalog hash. The newest one is what profiles_latest serves:
-- compare with `portrait warehouse ls` to see whether a publish is missing.
SELECT
    snapshot,
    count() AS users,
    any(catalog_hash) AS some_catalog_hash,
    uniqExact(catalog_hash) AS catalog_versions
FROM profiles
GROUP BY snapshot
ORDER BY snapshot DESC
LIMIT 20
