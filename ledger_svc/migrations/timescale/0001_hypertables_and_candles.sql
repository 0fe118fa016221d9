-- TimescaleDB path. Applied only where the server preloads the timescaledb extension
-- (migrate.py); tested beside the plain path (tests/ledger/test_timescale.py and the tests
-- marked BOTH_BACKENDS), where ingest maintains the `candles` table instead. Both paths
-- answer the same queries from a relation named `candles` with the same columns.
CREATE EXTENSION IF NOT EXISTS timescaledb;

-- Trades partitioned by engine time (microseconds), one chunk per day.
SELECT create_hypertable('trades', by_range('ts_us', 86400000000), migrate_data => true);

CREATE FUNCTION ledger_now_us() RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT (extract(epoch FROM now()) * 1000000)::bigint $$;
SELECT set_integer_now_func('trades', 'ledger_now_us');

-- Candles become continuous aggregates of trades; the table ingest maintains goes away.
DROP TABLE candles;

CREATE MATERIALIZED VIEW candles_1m
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT market, time_bucket(60000000::bigint, ts_us) AS open_time_us,
       first(price, trade_id) AS open, max(price) AS high, min(price) AS low,
       last(price, trade_id) AS close, sum(quantity)::numeric AS volume,
       sum(quote_quantity)::numeric AS quote_volume, count(*) AS trades,
       min(trade_id) AS first_trade_id, max(trade_id) AS last_trade_id
FROM trades
GROUP BY market, time_bucket(60000000::bigint, ts_us)
WITH NO DATA;
SELECT add_continuous_aggregate_policy('candles_1m',
    start_offset => 3600000000, end_offset => 60000000, schedule_interval => INTERVAL '10 seconds');

CREATE MATERIALIZED VIEW candles_5m
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT market, time_bucket(300000000::bigint, ts_us) AS open_time_us,
       first(price, trade_id) AS open, max(price) AS high, min(price) AS low,
       last(price, trade_id) AS close, sum(quantity)::numeric AS volume,
       sum(quote_quantity)::numeric AS quote_volume, count(*) AS trades,
       min(trade_id) AS first_trade_id, max(trade_id) AS last_trade_id
FROM trades
GROUP BY market, time_bucket(300000000::bigint, ts_us)
WITH NO DATA;
SELECT add_continuous_aggregate_policy('candles_5m',
    start_offset => 3600000000, end_offset => 300000000, schedule_interval => INTERVAL '50 seconds');

CREATE MATERIALIZED VIEW candles_15m
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT market, time_bucket(900000000::bigint, ts_us) AS open_time_us,
       first(price, trade_id) AS open, max(price) AS high, min(price) AS low,
       last(price, trade_id) AS close, sum(quantity)::numeric AS volume,
       sum(quote_quantity)::numeric AS quote_volume, count(*) AS trades,
       min(trade_id) AS first_trade_id, max(trade_id) AS last_trade_id
FROM trades
GROUP BY market, time_bucket(900000000::bigint, ts_us)
WITH NO DATA;
SELECT add_continuous_aggregate_policy('candles_15m',
    start_offset => 3600000000, end_offset => 900000000, schedule_interval => INTERVAL '150 seconds');

CREATE MATERIALIZED VIEW candles_30m
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT market, time_bucket(1800000000::bigint, ts_us) AS open_time_us,
       first(price, trade_id) AS open, max(price) AS high, min(price) AS low,
       last(price, trade_id) AS close, sum(quantity)::numeric AS volume,
       sum(quote_quantity)::numeric AS quote_volume, count(*) AS trades,
       min(trade_id) AS first_trade_id, max(trade_id) AS last_trade_id
FROM trades
GROUP BY market, time_bucket(1800000000::bigint, ts_us)
WITH NO DATA;
SELECT add_continuous_aggregate_policy('candles_30m',
    start_offset => 5400000000, end_offset => 1800000000, schedule_interval => INTERVAL '300 seconds');

CREATE MATERIALIZED VIEW candles_1h
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT market, time_bucket(3600000000::bigint, ts_us) AS open_time_us,
       first(price, trade_id) AS open, max(price) AS high, min(price) AS low,
       last(price, trade_id) AS close, sum(quantity)::numeric AS volume,
       sum(quote_quantity)::numeric AS quote_volume, count(*) AS trades,
       min(trade_id) AS first_trade_id, max(trade_id) AS last_trade_id
FROM trades
GROUP BY market, time_bucket(3600000000::bigint, ts_us)
WITH NO DATA;
SELECT add_continuous_aggregate_policy('candles_1h',
    start_offset => 10800000000, end_offset => 3600000000, schedule_interval => INTERVAL '600 seconds');

CREATE MATERIALIZED VIEW candles_4h
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT market, time_bucket(14400000000::bigint, ts_us) AS open_time_us,
       first(price, trade_id) AS open, max(price) AS high, min(price) AS low,
       last(price, trade_id) AS close, sum(quantity)::numeric AS volume,
       sum(quote_quantity)::numeric AS quote_volume, count(*) AS trades,
       min(trade_id) AS first_trade_id, max(trade_id) AS last_trade_id
FROM trades
GROUP BY market, time_bucket(14400000000::bigint, ts_us)
WITH NO DATA;
SELECT add_continuous_aggregate_policy('candles_4h',
    start_offset => 43200000000, end_offset => 14400000000, schedule_interval => INTERVAL '2400 seconds');

CREATE MATERIALIZED VIEW candles_1d
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT market, time_bucket(86400000000::bigint, ts_us) AS open_time_us,
       first(price, trade_id) AS open, max(price) AS high, min(price) AS low,
       last(price, trade_id) AS close, sum(quantity)::numeric AS volume,
       sum(quote_quantity)::numeric AS quote_volume, count(*) AS trades,
       min(trade_id) AS first_trade_id, max(trade_id) AS last_trade_id
FROM trades
GROUP BY market, time_bucket(86400000000::bigint, ts_us)
WITH NO DATA;
SELECT add_continuous_aggregate_policy('candles_1d',
    start_offset => 259200000000, end_offset => 86400000000, schedule_interval => INTERVAL '3600 seconds');

CREATE MATERIALIZED VIEW candles_1w
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT market, time_bucket(604800000000::bigint, ts_us, 345600000000::bigint) AS open_time_us,
       first(price, trade_id) AS open, max(price) AS high, min(price) AS low,
       last(price, trade_id) AS close, sum(quantity)::numeric AS volume,
       sum(quote_quantity)::numeric AS quote_volume, count(*) AS trades,
       min(trade_id) AS first_trade_id, max(trade_id) AS last_trade_id
FROM trades
GROUP BY market, time_bucket(604800000000::bigint, ts_us, 345600000000::bigint)
WITH NO DATA;
SELECT add_continuous_aggregate_policy('candles_1w',
    start_offset => 1814400000000, end_offset => 604800000000, schedule_interval => INTERVAL '3600 seconds');

-- The one relation the queries read, as on plain PostgreSQL.
CREATE VIEW candles AS
SELECT market, 60 AS interval_s, open_time_us, open, high, low, close, volume,
       quote_volume, trades, first_trade_id, last_trade_id FROM candles_1m
UNION ALL
SELECT market, 300 AS interval_s, open_time_us, open, high, low, close, volume,
       quote_volume, trades, first_trade_id, last_trade_id FROM candles_5m
UNION ALL
SELECT market, 900 AS interval_s, open_time_us, open, high, low, close, volume,
       quote_volume, trades, first_trade_id, last_trade_id FROM candles_15m
UNION ALL
SELECT market, 1800 AS interval_s, open_time_us, open, high, low, close, volume,
       quote_volume, trades, first_trade_id, last_trade_id FROM candles_30m
UNION ALL
SELECT market, 3600 AS interval_s, open_time_us, open, high, low, close, volume,
       quote_volume, trades, first_trade_id, last_trade_id FROM candles_1h
UNION ALL
SELECT market, 14400 AS interval_s, open_time_us, open, high, low, close, volume,
       quote_volume, trades, first_trade_id, last_trade_id FROM candles_4h
UNION ALL
SELECT market, 86400 AS interval_s, open_time_us, open, high, low, close, volume,
       quote_volume, trades, first_trade_id, last_trade_id FROM candles_1d
UNION ALL
SELECT market, 604800 AS interval_s, open_time_us, open, high, low, close, volume,
       quote_volume, trades, first_trade_id, last_trade_id FROM candles_1w;


-- Old trades are compressed by market; compression and retention ages are set at start-up
-- from the ledger's settings (ledger_svc/migrate.py: timescale_policies).
ALTER TABLE trades SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'market',
    timescaledb.compress_orderby = 'trade_id DESC'
);
