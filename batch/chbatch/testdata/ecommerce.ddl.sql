CREATE TABLE IF NOT EXISTS `events` (
    `event_id` String,
    `user_id` Int64,
    `ts` Int64,
    `event_type` String,
    `channel` String,
    `session_id` String,
    `sku` Int64,
    `category` String,
    `amount` Float64,
    `quantity` Int64,
    `promo` UInt8,
    `_partition` Int32,
    `_offset` Int64,
    `_ingest_time` Int64,
    `_hour` DateTime('UTC')
) ENGINE = MergeTree PARTITION BY `_hour` ORDER BY (`user_id`, `ts`);

CREATE TABLE IF NOT EXISTS `profiles` (
    `snapshot` DateTime('UTC'),
    `user_id` Int64,
    `views_1h` Int64,
    `events_24h` Int64,
    `purchases_7d` Int64,
    `spend_7d` Nullable(Float64),
    `units_30d` Nullable(Int64),
    `avg_order_30d` Nullable(Float64),
    `max_order_30d` Nullable(Float64),
    `min_order_30d` Nullable(Float64),
    `sessions_7d` Int64,
    `skus_viewed_24h` Int64,
    `fav_category_30d` Nullable(String),
    `fav_channel_7d` Nullable(String),
    `first_channel` Nullable(String),
    `last_channel_24h` Nullable(String),
    `last_promo` Nullable(UInt8),
    `first_purchase` Nullable(Int64),
    `last_purchase` Nullable(Int64),
    `lifetime_spend` Nullable(Float64),
    `lifetime_refunds` Int64,
    `top_sku_lifetime` Nullable(Int64),
    `categories_lifetime` Int64,
    `avg_quantity` Nullable(Float64),
    `big_spender` UInt8,
    `app_loyal` UInt8,
    `churn_risk` UInt8,
    `vip` UInt8,
    `promo_hunter` UInt8,
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
