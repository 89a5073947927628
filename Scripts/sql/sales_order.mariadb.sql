-- The seed's sales_order table, for MariaDB. The key is VARCHAR with a binary no-pad
-- collation: MariaDB indexes no TEXT column, and its default collations take 'a' and 'A' (or
-- 'b' and 'b ') for one key, which `datajoin track` refuses (README, "Commands").
CREATE TABLE IF NOT EXISTS sales_order (
    order_id VARCHAR(64) COLLATE utf8mb4_nopad_bin PRIMARY KEY,
    order_type TEXT,
    description TEXT,
    product_type_name TEXT,
    customer_id TEXT,
    quantity TEXT,
    order_date TEXT,
    update_datetime TEXT,
    updated_by_user TEXT,
    updated_by_server TEXT
) CHARACTER SET utf8mb4;
