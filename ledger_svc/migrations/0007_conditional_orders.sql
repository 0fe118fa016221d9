-- Conditional orders (issue 21). A trigger order is an orders row from the moment it is
-- placed (status 7 TRIGGER_PENDING, nothing locked); when it fires, the order it becomes
-- keeps the row and its id (status NEW on), or the row ends as 8 TRIGGER_FAILED with the
-- reason. Take-profit / stop-loss legs are trigger orders with parent_order_id set, and
-- related_order_id names the other leg of the pair. All columns are NULL for other orders,
-- so adding them rewrites nothing.
ALTER TABLE orders
    ADD COLUMN trigger_price             bigint,
    ADD COLUMN trigger_above             boolean,
    ADD COLUMN take_profit_trigger_price bigint,
    ADD COLUMN take_profit_limit_price   bigint,
    ADD COLUMN stop_loss_trigger_price   bigint,
    ADD COLUMN stop_loss_limit_price     bigint,
    ADD COLUMN parent_order_id           bigint,
    ADD COLUMN related_order_id          bigint,
    ADD COLUMN triggered_at_us           bigint,
    ADD COLUMN trigger_failure           text;

-- Triggers that fired but whose order the ledger has not seen accepted yet (the two events
-- can fall in different ingest batches): ingest reads them when it starts.
CREATE INDEX orders_fired_triggers ON orders (order_id)
    WHERE status = 7 AND triggered_at_us IS NOT NULL;
