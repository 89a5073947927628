-- The seed's three data operations on testapp1 (run one step at a time by Scripts/demo.sh).
-- step 1: insert
INSERT INTO sales_order (order_id, order_type, description, product_type_name, customer_id, quantity, order_date, update_datetime, updated_by_user, updated_by_server)
VALUES ('ord2', 'online', 'first order', 'book', 'cust1', '2', '2025-06-24', '2025-06-24 10:00:00', 'milan', 'testapp1');
-- step 2: update one column
UPDATE sales_order SET description = 'changed description' WHERE order_id = 'ord2';
-- step 3: delete
DELETE FROM sales_order WHERE order_id = 'ord2';
