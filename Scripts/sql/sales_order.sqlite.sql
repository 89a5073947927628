-- The seed's sales_order table, for SQLite (testapp1 / testapp2).
CREATE TABLE IF NOT EXISTS sales_order (
    order_id TEXT PRIMARY KEY NOT NULL,
    order_type TEXT,
    description TEXT,
    product_type_name TEXT,
    customer_id TEXT,
    quantity TEXT,
    order_date TEXT,
    update_datetime TEXT,
    updated_by_user TEXT,
    updated_by_server TEXT
);
