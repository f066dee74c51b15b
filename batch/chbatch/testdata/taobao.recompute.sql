INSERT INTO `profiles_recompute_1512259200000` (`snapshot`, `user_id`, `pv_24h`, `buys_7d`, `items_seen_7d`, `top_category_7d`, `last_buy_cat`, `first_seen`, `buyer_7d`, `window_shopper`, `carts_24h`, `last_seen`, `catalog_hash`)
SELECT
    toDateTime(1512259200),
    `user_id`,
    `pv_24h`,
    `buys_7d`,
    `items_seen_7d`,
    `top_category_7d`,
    `last_buy_cat`,
    `first_seen`,
    (`buys_7d` > toInt64(0)) AS `buyer_7d`,
    ((`pv_24h` >= toInt64(20)) AND (`buys_7d` = toInt64(0))) AS `window_shopper`,
    `carts_24h`,
    `last_seen`,
    'd37a214d469be33f'
FROM
(
    SELECT `user_id`, `pv_24h`, `buys_7d`, `items_seen_7d`, `last_buy_cat`, `first_seen`, `carts_24h`, `last_seen`, `top_category_7d`
    FROM
    (
        SELECT
            `user_id`,
            toInt64(countIf(`ts` >= toInt64(1512172800000) AND (`behavior` = 'pv'))) AS `pv_24h`,
            toInt64(countIf(`ts` >= toInt64(1511654400000) AND (`behavior` = 'buy'))) AS `buys_7d`,
            toInt64(uniqExactIf(`item_id`, `ts` >= toInt64(1511654400000))) AS `items_seen_7d`,
            if(countIf((`behavior` = 'buy')) = 0, NULL, argMaxIf(`category_id`, (`ts`, `_partition`, `_offset`), (`behavior` = 'buy'))) AS `last_buy_cat`,
            if(count() = 0, NULL, min(`ts`)) AS `first_seen`,
            toInt64(countIf(`ts` >= toInt64(1512172800000) AND (`behavior` = 'cart'))) AS `carts_24h`,
            if(count() = 0, NULL, max(`ts`)) AS `last_seen`
        FROM
        (
            SELECT `user_id`, `item_id`, `category_id`, `behavior`, `ts`, `_partition`, `_offset`
            FROM `events`
            WHERE `_hour` < toDateTime(1512259200) AND `ts` < toInt64(1512259200000)
        )
        GROUP BY `user_id`
    ) AS `_l`
    ANY LEFT JOIN
    (
        SELECT `user_id`, toNullable(argMin(`_v`, (negate(`_n`), `_v`))) AS `top_category_7d`
        FROM
        (
            SELECT `user_id`, `category_id` AS `_v`, count() AS `_n`
            FROM
            (
                SELECT `user_id`, `item_id`, `category_id`, `behavior`, `ts`, `_partition`, `_offset`
                FROM `events`
                WHERE `_hour` < toDateTime(1512259200) AND `ts` < toInt64(1512259200000)
            )
            WHERE `ts` >= toInt64(1511654400000)
            GROUP BY `user_id`, `_v`
        )
        GROUP BY `user_id`
    ) AS `_r` USING `user_id`
);
