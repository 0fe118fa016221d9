-- Indexes cost ingest on every row; these were kept by no query.
--
-- trades: one key serves both the primary key and GetTrades (a market's trades by id, read
-- backwards), so (trade_id, ts_us) and (market, trade_id DESC) become (market, trade_id,
-- ts_us). A trade id names one trade, hence one market: it is as unique as before, and
-- ts_us stays in it so that trades can still be a hypertable. The 24h ticker reads the
-- trades of its first, partial minute by the id range of that minute's candle (queries.py),
-- so (market, ts_us) goes.
ALTER TABLE trades DROP CONSTRAINT trades_pkey;
DROP INDEX trades_market_id;
DROP INDEX trades_market_time;
ALTER TABLE trades ADD PRIMARY KEY (market, trade_id, ts_us);

-- orders: GetOrderHistory's filter is `($2 = '' OR market = $2)`, which an index cannot
-- match in the statement's generic plan (the one PostgreSQL settles on for a prepared
-- statement), so it reads (user_id, order_id DESC) with or without a market.
DROP INDEX orders_user_market;

-- order_events: the history of each order's status, written by ingest and read by no query;
-- exactly-once comes from the ingest cursor, not from this key.
ALTER TABLE order_events DROP CONSTRAINT order_events_pkey;

-- ledger_entries: reconcile takes back the moves after the engine's export from the engine's
-- events (reconcile.py), no longer from the entries by seq.
DROP INDEX ledger_entries_seq;
