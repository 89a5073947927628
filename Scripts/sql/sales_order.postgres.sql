-- The seed's sales_order table, for PostgreSQL (testapp1 / testapp2).
CREATE TABLE IF NOT EXISTS sales_order (
    order_id text PRIMARY KEY,
    order_type text,
    description text,
    product_type_name text,
    customer_id text,
    quantity text,
    order_date text,
    update_datetime text,
    updated_by_user text,
    updated_by_server text
);
