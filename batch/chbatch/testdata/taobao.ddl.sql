CREATE TABLE IF NOT EXISTS `events` (
    `user_id` Int64,
    `item_id` Int64,
    `category_id` Int64,
    `behavior` String,
    `ts` Int64,
    `_partition` Int32,
    `_offset` Int64,
    `_ingest_time` Int64,
    `_hour` DateTime('UTC')
) ENGINE = MergeTree PARTITION BY `_hour` ORDER BY (`user_id`, `ts`);

CREATE TABLE IF NOT EXISTS `profiles` (
    `snapshot` DateTime('UTC'),
    `user_id` Int64,
    `pv_24h` Int64,
    `buys_7d` Int64,
    `items_seen_7d` Int64,
    `top_category_7d` Nullable(Int64),
    `last_buy_cat` Nullable(Int64),
    `first_seen` Nullable(Int64),
    `buyer_7d` UInt8,
    `window_shopper` UInt8,
    `carts_24h` Int64,
    `last_seen` Nullable(Int64),
    `catalog_hash` String
) ENGINE = MergeTree PARTITION BY `snapshot` ORDER BY `user_id`;

CREATE TABLE IF NOT EXISTS `tag_drift` (
    `snapshot` DateTime('UTC'),
    `tag` String,
    `users_compared` Int64,
    `equal` Int64,
    `different` Int64,
    `only_batch` Int64,
    `only_speed` Int64,
    `max_abs_error` Float64,
    `mean_abs_error` Float64,
    `sample` String,
    `causes` String,
    `computed_at` DateTime('UTC')
) ENGINE = ReplacingMergeTree(`computed_at`) PARTITION BY toYYYYMM(`snapshot`) ORDER BY (`snapshot`, `tag`);

CREATE TABLE IF NOT EXISTS `job_runs` (
    `job` String,
    `run_id` String,
    `attempt` Int64,
    `started` DateTime('UTC'),
    `ended` DateTime('UTC'),
    `status` String,
    `rows` Int64,
    `error` String
) ENGINE = ReplacingMergeTree(`ended`) PARTITION BY toYYYYMM(`started`) ORDER BY (`job`, `run_id`, `attempt`);

CREATE VIEW IF NOT EXISTS `profiles_latest` AS SELECT * FROM `profiles` WHERE `snapshot` = (SELECT max(`snapshot`) FROM `profiles`);
