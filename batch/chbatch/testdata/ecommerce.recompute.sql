INSERT INTO `profiles_recompute_1512259200000` (`snapshot`, `user_id`, `views_1h`, `events_24h`, `purchases_7d`, `spend_7d`, `units_30d`, `avg_order_30d`, `max_order_30d`, `min_order_30d`, `sessions_7d`, `skus_viewed_24h`, `fav_category_30d`, `fav_channel_7d`, `first_channel`, `last_channel_24h`, `last_promo`, `first_purchase`, `last_purchase`, `lifetime_spend`, `lifetime_refunds`, `top_sku_lifetime`, `categories_lifetime`, `avg_quantity`, `big_spender`, `app_loyal`, `churn_risk`, `vip`, `promo_hunter`, `catalog_hash`)
SELECT
    toDateTime(1512259200),
    `user_id`,
    `views_1h`,
    `events_24h`,
    `purchases_7d`,
    `spend_7d`,
    `units_30d`,
    `avg_order_30d`,
    `max_order_30d`,
    `min_order_30d`,
    `sessions_7d`,
    `skus_viewed_24h`,
    `fav_category_30d`,
    `fav_channel_7d`,
    `first_channel`,
    `last_channel_24h`,
    `last_promo`,
    `first_purchase`,
    `last_purchase`,
    `lifetime_spend`,
    `lifetime_refunds`,
    `top_sku_lifetime`,
    `categories_lifetime`,
    `avg_quantity`,
    (isNotNull(`spend_7d`) AND ifNull((`spend_7d` >= toFloat64(toInt64(500))), 0)) AS `big_spender`,
    (ifNull((`fav_channel_7d` = 'app'), 0) AND (`sessions_7d` >= toInt64(3))) AS `app_loyal`,
    (((`events_24h` = toInt64(0)) AND (`purchases_7d` = toInt64(0))) AND ifNull((`lifetime_spend` > toFloat64(toInt64(100))), 0)) AS `churn_risk`,
    (((isNotNull(`spend_7d`) AND ifNull((`spend_7d` >= toFloat64(toInt64(500))), 0))) OR (isNotNull(`units_30d`) AND ifNull(((`units_30d` * toInt64(2)) > toInt64(40)), 0))) AS `vip`,
    (ifNull((`last_promo` = toUInt8(1)), 0) AND ifNull((`avg_order_30d` < toFloat64(50.5)), 0)) AS `promo_hunter`,
    'cae9528a4ca7e829'
FROM
(
    SELECT `user_id`, `views_1h`, `events_24h`, `purchases_7d`, `spend_7d`, `units_30d`, `avg_order_30d`, `max_order_30d`, `min_order_30d`, `sessions_7d`, `skus_viewed_24h`, `first_channel`, `last_channel_24h`, `last_promo`, `first_purchase`, `last_purchase`, `lifetime_spend`, `lifetime_refunds`, `categories_lifetime`, `avg_quantity`, `fav_category_30d`, `fav_channel_7d`, `top_sku_lifetime`
    FROM
    (
        SELECT `user_id`, `views_1h`, `events_24h`, `purchases_7d`, `spend_7d`, `units_30d`, `avg_order_30d`, `max_order_30d`, `min_order_30d`, `sessions_7d`, `skus_viewed_24h`, `first_channel`, `last_channel_24h`, `last_promo`, `first_purchase`, `last_purchase`, `lifetime_spend`, `lifetime_refunds`, `categories_lifetime`, `avg_quantity`, `fav_category_30d`, `fav_channel_7d`
        FROM
        (
            SELECT `user_id`, `views_1h`, `events_24h`, `purchases_7d`, `spend_7d`, `units_30d`, `avg_order_30d`, `max_order_30d`, `min_order_30d`, `sessions_7d`, `skus_viewed_24h`, `first_channel`, `last_channel_24h`, `last_promo`, `first_purchase`, `last_purchase`, `lifetime_spend`, `lifetime_refunds`, `categories_lifetime`, `avg_quantity`, `fav_category_30d`
            FROM
            (
                SELECT
                    `user_id`,
                    toInt64(countIf(`ts` >= toInt64(1512255600000) AND (`event_type` = 'view'))) AS `views_1h`,
                    toInt64(countIf(`ts` >= toInt64(1512172800000))) AS `events_24h`,
                    toInt64(countIf(`ts` >= toInt64(1511654400000) AND (`event_type` = 'purchase'))) AS `purchases_7d`,
                    if(countIf(`ts` >= toInt64(1511654400000) AND (`event_type` = 'purchase')) = 0, NULL, sumIf(`amount`, `ts` >= toInt64(1511654400000) AND (`event_type` = 'purchase'))) AS `spend_7d`,
                    if(countIf(`ts` >= toInt64(1509667200000) AND (`event_type` = 'purchase')) = 0, NULL, sumIf(`quantity`, `ts` >= toInt64(1509667200000) AND (`event_type` = 'purchase'))) AS `units_30d`,
                    if(countIf(`ts` >= toInt64(1509667200000) AND (`event_type` = 'purchase')) = 0, NULL, toFloat64(sumIf(`amount`, `ts` >= toInt64(1509667200000) AND (`event_type` = 'purchase'))) / toFloat64(countIf(`ts` >= toInt64(1509667200000) AND (`event_type` = 'purchase')))) AS `avg_order_30d`,
                    if(countIf(`ts` >= toInt64(1509667200000) AND (`event_type` = 'purchase')) = 0, NULL, maxIf(`amount`, `ts` >= toInt64(1509667200000) AND (`event_type` = 'purchase'))) AS `max_order_30d`,
                    if(countIf(`ts` >= toInt64(1509667200000) AND ((`event_type` = 'purchase') AND (`amount` > toFloat64(toInt64(0))))) = 0, NULL, minIf(`amount`, `ts` >= toInt64(1509667200000) AND ((`event_type` = 'purchase') AND (`amount` > toFloat64(toInt64(0)))))) AS `min_order_30d`,
                    toInt64(uniqExactIf(`session_id`, `ts` >= toInt64(1511654400000))) AS `sessions_7d`,
                    toInt64(uniqExactIf(`sku`, `ts` >= toInt64(1512172800000) AND (`event_type` = 'view'))) AS `skus_viewed_24h`,
                    if(count() = 0, NULL, argMin(`channel`, (`ts`, `_partition`, `_offset`))) AS `first_channel`,
                    if(countIf(`ts` >= toInt64(1512172800000)) = 0, NULL, argMaxIf(`channel`, (`ts`, `_partition`, `_offset`), `ts` >= toInt64(1512172800000))) AS `last_channel_24h`,
                    if(count() = 0, NULL, argMax(`promo`, (`ts`, `_partition`, `_offset`))) AS `last_promo`,
                    if(countIf((`event_type` = 'purchase')) = 0, NULL, minIf(`ts`, (`event_type` = 'purchase'))) AS `first_purchase`,
                    if(countIf((`event_type` = 'purchase')) = 0, NULL, argMaxIf(`ts`, (`ts`, `_partition`, `_offset`), (`event_type` = 'purchase'))) AS `last_purchase`,
                    if(countIf((`event_type` = 'purchase')) = 0, NULL, sumIf(`amount`, (`event_type` = 'purchase'))) AS `lifetime_spend`,
                    toInt64(countIf((`event_type` = 'refund'))) AS `lifetime_refunds`,
                    toInt64(uniqExact(`category`)) AS `categories_lifetime`,
                    if(count() = 0, NULL, toFloat64(sum(`quantity`)) / toFloat64(count())) AS `avg_quantity`
                FROM
                (
                    SELECT `event_id`, `user_id`, `ts`, `event_type`, `channel`, `session_id`, `sku`, `category`, `amount`, `quantity`, `promo`, `_partition`, `_offset`
                    FROM `events`
                    WHERE `_hour` < toDateTime(1512259200) AND `ts` < toInt64(1512259200000)
                    ORDER BY `user_id`, `event_id`, `ts`, `_partition`, `_offset`
                    LIMIT 1 BY `user_id`, `event_id`
                )
                GROUP BY `user_id`
            ) AS `_l`
            ANY LEFT JOIN
            (
                SELECT `user_id`, toNullable(argMin(`_v`, (negate(`_n`), `_v`))) AS `fav_category_30d`
                FROM
                (
                    SELECT `user_id`, `category` AS `_v`, count() AS `_n`
                    FROM
                    (
                        SELECT `event_id`, `user_id`, `ts`, `event_type`, `channel`, `session_id`, `sku`, `category`, `amount`, `quantity`, `promo`, `_partition`, `_offset`
                        FROM `events`
                        WHERE `_hour` < toDateTime(1512259200) AND `ts` < toInt64(1512259200000)
                        ORDER BY `user_id`, `event_id`, `ts`, `_partition`, `_offset`
                        LIMIT 1 BY `user_id`, `event_id`
                    )
                    WHERE `ts` >= toInt64(1509667200000)
                    GROUP BY `user_id`, `_v`
                )
                GROUP BY `user_id`
            ) AS `_r` USING `user_id`
        ) AS `_l`
        ANY LEFT JOIN
        (
            SELECT `user_id`, toNullable(argMin(`_v`, (negate(`_n`), `_v`))) AS `fav_channel_7d`
            FROM
            (
                SELECT `user_id`, `channel` AS `_v`, count() AS `_n`
                FROM
                (
                    SELECT `event_id`, `user_id`, `ts`, `event_type`, `channel`, `session_id`, `sku`, `category`, `amount`, `quantity`, `promo`, `_partition`, `_offset`
                    FROM `events`
                    WHERE `_hour` < toDateTime(1512259200) AND `ts` < toInt64(1512259200000)
                    ORDER BY `user_id`, `event_id`, `ts`, `_partition`, `_offset`
                    LIMIT 1 BY `user_id`, `event_id`
                )
                WHERE `ts` >= toInt64(1511654400000)
                GROUP BY `user_id`, `_v`
            )
            GROUP BY `user_id`
        ) AS `_r` USING `user_id`
    ) AS `_l`
    ANY LEFT JOIN
    (
        SELECT `user_id`, toNullable(argMin(`_v`, (negate(`_n`), `_v`))) AS `top_sku_lifetime`
        FROM
        (
            SELECT `user_id`, `sku` AS `_v`, count() AS `_n`
            FROM
            (
                SELECT `event_id`, `user_id`, `ts`, `event_type`, `channel`, `session_id`, `sku`, `category`, `amount`, `quantity`, `promo`, `_partition`, `_offset`
                FROM `events`
                WHERE `_hour` < toDateTime(1512259200) AND `ts` < toInt64(1512259200000)
                ORDER BY `user_id`, `event_id`, `ts`, `_partition`, `_offset`
                LIMIT 1 BY `user_id`, `event_id`
            )
            WHERE (`event_type` IN ('purchase', 'cart'))
            GROUP BY `user_id`, `_v`
        )
        GROUP BY `user_id`
    ) AS `_r` USING `user_id`
);
