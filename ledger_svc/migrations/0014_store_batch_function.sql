-- One round trip per ingest batch (issue 27). The writer used to send a batch as fifteen
-- round trips: BEGIN, the cursor's UPDATE, a COPY (two trips each) per table with rows, the
-- order and balance statements, COMMIT. At ~100 small batches a second those trips, not
-- the rows, were most of the ledger's and PostgreSQL's CPU. `store_batch` takes the whole
-- batch as one array of rows per table and applies it in the one statement that calls it,
-- which is its own transaction: the cursor moves with the rows or nothing is written.
--
-- Row types: the columns, in order, that the projection makes (ledger_svc/projection.py);
-- they do not follow the tables' later columns, so a new column changes neither side.

CREATE TYPE store_asset AS (symbol text, decimals smallint, seq bigint);

CREATE TYPE store_market AS (
    symbol text, base text, quote text, tick_size text, step_size text, min_quantity text,
    min_notional text, max_quantity text, max_price text, maker_fee_bps integer,
    taker_fee_bps integer, status smallint, seq bigint
);

CREATE TYPE store_market_status AS (symbol text, status smallint, seq bigint);

CREATE TYPE store_order AS (
    order_id bigint, user_id bigint, market text, client_order_id bigint, side smallint,
    type smallint, time_in_force smallint, self_trade_prevention smallint, post_only boolean,
    price bigint, quantity bigint, quote_quantity bigint, executed_quantity bigint,
    executed_quote_quantity bigint, fees_paid bigint, locked bigint, status smallint,
    close_reason smallint, created_at_us bigint, updated_at_us bigint, seq bigint
);

-- Changes to an order an earlier batch stored; status 0 keeps it (unless filled).
CREATE TYPE store_order_delta AS (
    order_id bigint, exec_q bigint, exec_qq bigint, fees bigint, locked bigint,
    status smallint, reason smallint, updated bigint
);

-- The conditional fields of an order; NULL keeps the stored value.
CREATE TYPE store_condition AS (
    order_id bigint, trigger_price bigint, trigger_above boolean,
    take_profit_trigger_price bigint, take_profit_limit_price bigint,
    stop_loss_trigger_price bigint, stop_loss_limit_price bigint, parent_order_id bigint,
    related_order_id bigint, triggered_at_us bigint, trigger_failure text
);

CREATE TYPE store_order_event AS (
    seq bigint, order_id bigint, status smallint, close_reason smallint,
    executed_quantity bigint, ts_us bigint
);

CREATE TYPE store_trade AS (
    trade_id bigint, market text, price bigint, quantity bigint, quote_quantity bigint,
    taker_side smallint, maker_order_id bigint, maker_user_id bigint, taker_order_id bigint,
    taker_user_id bigint, maker_fee bigint, taker_fee bigint, seq bigint, ts_us bigint
);

CREATE TYPE store_transfer AS (
    transfer_id bigint, amount bigint, debit_user bigint, credit_user bigint, order_id bigint,
    trade_id bigint, ts_us bigint, debit_fee bigint, credit_fee bigint,
    credit_fee_order_id bigint, debit_bucket smallint, credit_bucket smallint, kind smallint,
    asset text
);

-- Deltas of the available and locked buckets.
CREATE TYPE store_balance AS (user_id bigint, asset text, available bigint, locked bigint);

CREATE TYPE store_candle AS (
    market text, interval_s integer, open_time_us bigint, open bigint, high bigint,
    low bigint, close bigint, volume numeric, quote_volume numeric, trades bigint,
    first_trade_id bigint, last_trade_id bigint
);

-- Stores the batch of events after_seq + 1 .. to_seq and moves the cursor there. Returns
-- NULL once stored; otherwise where the cursor stands (another writer moved it), having
-- written nothing. A table's statement runs only when the batch has rows for it. Joins
-- other than by index are off for the function: knowing a large batch's size (in the
-- first, custom plans), the planner would rather hash the whole orders table to find the
-- deltas' orders, a scan that grows with the history.
CREATE FUNCTION store_batch(
    after_seq bigint, to_seq bigint, to_ts_us bigint,
    new_assets store_asset[], new_markets store_market[],
    status_changes store_market_status[], new_orders store_order[],
    deltas store_order_delta[], conditions store_condition[],
    new_order_events store_order_event[], new_trades store_trade[],
    new_transfers store_transfer[], balance_deltas store_balance[],
    candle_updates store_candle[]
) RETURNS bigint
LANGUAGE plpgsql
SET enable_hashjoin = off
SET enable_mergejoin = off
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- Checked and moved in one statement: the row stays locked to the commit, so a
    -- writer doing the same meanwhile waits, then finds the cursor moved.
    UPDATE ingest_cursor SET last_seq = to_seq, last_ts_us = to_ts_us
        WHERE last_seq = after_seq;
    IF NOT FOUND THEN
        RETURN (SELECT last_seq FROM ingest_cursor);
    END IF;
    IF cardinality(new_assets) > 0 THEN
        INSERT INTO assets (symbol, decimals, seq) SELECT * FROM unnest(new_assets);
    END IF;
    IF cardinality(new_markets) > 0 THEN
        INSERT INTO markets (symbol, base, quote, tick_size, step_size, min_quantity,
                             min_notional, max_quantity, max_price, maker_fee_bps,
                             taker_fee_bps, status, seq)
            SELECT * FROM unnest(new_markets);
    END IF;
    IF cardinality(status_changes) > 0 THEN
        -- In event order: a market's last change wins.
        FOR i IN 1 .. cardinality(status_changes) LOOP
            UPDATE markets SET status = status_changes[i].status, seq = status_changes[i].seq
                WHERE symbol = status_changes[i].symbol;
        END LOOP;
    END IF;
    IF cardinality(new_orders) > 0 THEN
        INSERT INTO orders (order_id, user_id, market, client_order_id, side, type,
                            time_in_force, self_trade_prevention, post_only, price, quantity,
                            quote_quantity, executed_quantity, executed_quote_quantity,
                            fees_paid, locked, status, close_reason, created_at_us,
                            updated_at_us, seq)
            SELECT * FROM unnest(new_orders);
    END IF;
    IF cardinality(deltas) > 0 THEN
        -- A fill moves a NEW order to PARTIALLY_FILLED; a close sets its final status.
        UPDATE orders AS o SET
            executed_quantity = o.executed_quantity + d.exec_q,
            executed_quote_quantity = o.executed_quote_quantity + d.exec_qq,
            fees_paid = o.fees_paid + d.fees,
            locked = o.locked + d.locked,
            status = CASE WHEN d.status <> 0 THEN d.status
                          WHEN d.exec_q > 0 AND o.status = 1 THEN 2
                          ELSE o.status END,
            close_reason = CASE WHEN d.status <> 0 THEN d.reason ELSE o.close_reason END,
            updated_at_us = d.updated
        FROM unnest(deltas) AS d
        WHERE o.order_id = d.order_id;
    END IF;
    IF cardinality(conditions) > 0 THEN
        -- Rows that exist by now: inserted above, or by an earlier batch.
        UPDATE orders AS o SET
            trigger_price = COALESCE(d.trigger_price, o.trigger_price),
            trigger_above = COALESCE(d.trigger_above, o.trigger_above),
            take_profit_trigger_price =
                COALESCE(d.take_profit_trigger_price, o.take_profit_trigger_price),
            take_profit_limit_price =
                COALESCE(d.take_profit_limit_price, o.take_profit_limit_price),
            stop_loss_trigger_price =
                COALESCE(d.stop_loss_trigger_price, o.stop_loss_trigger_price),
            stop_loss_limit_price = COALESCE(d.stop_loss_limit_price, o.stop_loss_limit_price),
            parent_order_id = COALESCE(d.parent_order_id, o.parent_order_id),
            related_order_id = COALESCE(d.related_order_id, o.related_order_id),
            triggered_at_us = COALESCE(d.triggered_at_us, o.triggered_at_us),
            trigger_failure = COALESCE(d.trigger_failure, o.trigger_failure)
        FROM unnest(conditions) AS d
        WHERE o.order_id = d.order_id;
    END IF;
    IF cardinality(new_order_events) > 0 THEN
        INSERT INTO order_events (seq, order_id, status, close_reason, executed_quantity, ts_us)
            SELECT * FROM unnest(new_order_events);
    END IF;
    IF cardinality(new_trades) > 0 THEN
        INSERT INTO trades (trade_id, market, price, quantity, quote_quantity, taker_side,
                            maker_order_id, maker_user_id, taker_order_id, taker_user_id,
                            maker_fee, taker_fee, seq, ts_us)
            SELECT * FROM unnest(new_trades);
    END IF;
    IF cardinality(new_transfers) > 0 THEN
        INSERT INTO ledger_transfers (transfer_id, amount, debit_user, credit_user, order_id,
                                      trade_id, ts_us, debit_fee, credit_fee,
                                      credit_fee_order_id, debit_bucket, credit_bucket, kind,
                                      asset)
            SELECT * FROM unnest(new_transfers);
    END IF;
    IF cardinality(balance_deltas) > 0 THEN
        INSERT INTO balances AS b (user_id, asset, available, locked)
            SELECT * FROM unnest(balance_deltas)
        ON CONFLICT (user_id, asset) DO UPDATE SET
            available = b.available + excluded.available,
            locked = b.locked + excluded.locked;
    END IF;
    IF cardinality(candle_updates) > 0 THEN
        -- Events arrive in order, so an existing candle keeps its open and takes the
        -- batch's close.
        INSERT INTO candles AS c (market, interval_s, open_time_us, open, high, low, close,
                                  volume, quote_volume, trades, first_trade_id, last_trade_id)
            SELECT * FROM unnest(candle_updates)
        ON CONFLICT (market, interval_s, open_time_us) DO UPDATE SET
            high = greatest(c.high, excluded.high),
            low = least(c.low, excluded.low),
            close = excluded.close,
            volume = c.volume + excluded.volume,
            quote_volume = c.quote_volume + excluded.quote_volume,
            trades = c.trades + excluded.trades,
            last_trade_id = excluded.last_trade_id;
    END IF;
    RETURN NULL;
END
$$;
