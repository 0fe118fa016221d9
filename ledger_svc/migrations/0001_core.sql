-- The ledger's core schema. Money is stored as integers in the smallest unit of its asset
-- (prices in quote units per whole base unit), exactly as the engine keeps it; sums that may
-- outgrow 64 bits are numeric. Times are microseconds since the Unix epoch, the engine's clock.

-- Where ingest stands: the last engine event whose rows are committed. It is updated in the
-- same transaction as those rows, which is what makes ingest exactly-once.
CREATE TABLE ingest_cursor (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_seq  bigint  NOT NULL,
    last_ts_us bigint NOT NULL
);
INSERT INTO ingest_cursor VALUES (true, 0, 0);

CREATE TABLE assets (
    symbol   text PRIMARY KEY,
    decimals smallint NOT NULL,
    seq      bigint NOT NULL
);

CREATE TABLE markets (
    symbol          text PRIMARY KEY,
    base            text NOT NULL REFERENCES assets,
    quote           text NOT NULL REFERENCES assets,
    tick_size       text NOT NULL,
    step_size       text NOT NULL,
    min_quantity    text NOT NULL,
    min_notional    text NOT NULL,
    max_quantity    text NOT NULL,
    max_price       text NOT NULL,
    maker_fee_bps   integer NOT NULL,
    taker_fee_bps   integer NOT NULL,
    status          smallint NOT NULL,
    seq             bigint NOT NULL
);

CREATE TABLE users (
    user_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL,
    password_hash text NOT NULL,
    created_at_us bigint NOT NULL
);
-- Emails are unique whatever their case.
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE api_keys (
    key_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users,
    public_key    text NOT NULL UNIQUE,
    label         text NOT NULL,
    created_at_us bigint NOT NULL,
    revoked_at_us bigint
);
CREATE INDEX api_keys_user ON api_keys (user_id);

-- Orders as they stand now (one row each, updated as they fill and close).
CREATE TABLE orders (
    order_id                bigint PRIMARY KEY,
    user_id                 bigint NOT NULL,
    market                  text NOT NULL,
    client_order_id         bigint NOT NULL,
    side                    smallint NOT NULL,
    type                    smallint NOT NULL,
    time_in_force           smallint NOT NULL,
    self_trade_prevention   smallint NOT NULL,
    post_only               boolean NOT NULL,
    price                   bigint,   -- NULL for market orders
    quantity                bigint,   -- NULL for market orders by quote amount
    quote_quantity          bigint,   -- the budget of a market order by quote amount
    executed_quantity       bigint NOT NULL,
    executed_quote_quantity bigint NOT NULL,
    fees_paid               bigint NOT NULL,
    locked                  bigint NOT NULL,
    status                  smallint NOT NULL,
    close_reason            smallint NOT NULL,
    created_at_us           bigint NOT NULL,
    updated_at_us           bigint NOT NULL,
    seq                     bigint NOT NULL  -- the event that accepted it
);
CREATE INDEX orders_user ON orders (user_id, order_id DESC);
CREATE INDEX orders_user_market ON orders (user_id, market, order_id DESC);

-- Every status change of every order: accepted (NEW), rested after taking, closed.
-- Fills in between are the rows of `trades`.
CREATE TABLE order_events (
    seq                     bigint NOT NULL,
    order_id                bigint NOT NULL,
    status                  smallint NOT NULL,
    close_reason            smallint NOT NULL,
    executed_quantity       bigint,  -- known at acceptance and at close
    ts_us                   bigint NOT NULL,
    PRIMARY KEY (order_id, seq)
);

CREATE TABLE trades (
    trade_id        bigint NOT NULL,
    market          text NOT NULL,
    price           bigint NOT NULL,
    quantity        bigint NOT NULL,
    quote_quantity  bigint NOT NULL,
    taker_side      smallint NOT NULL,
    maker_order_id  bigint NOT NULL,
    maker_user_id   bigint NOT NULL,
    taker_order_id  bigint NOT NULL,
    taker_user_id   bigint NOT NULL,
    maker_fee       bigint NOT NULL,
    taker_fee       bigint NOT NULL,
    seq             bigint NOT NULL,
    ts_us           bigint NOT NULL,
    PRIMARY KEY (trade_id, ts_us)  -- ts_us is part of the key so that it can be a hypertable
);
CREATE INDEX trades_market_id ON trades (market, trade_id DESC);
CREATE INDEX trades_market_time ON trades (market, ts_us);
CREATE INDEX trades_maker ON trades (maker_user_id, ts_us DESC);
CREATE INDEX trades_taker ON trades (taker_user_id, ts_us DESC);

-- The double-entry ledger: one transaction per engine event (its seq); per asset the
-- entries of a transaction sum to zero. bucket: 1 available, 2 locked, 3 external.
-- kind: 1 deposit, 2 withdraw, 3 lock, 4 unlock, 5 trade, 6 fee.
CREATE TABLE ledger_entries (
    entry_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq       bigint NOT NULL,
    user_id   bigint NOT NULL,
    asset     text NOT NULL,
    bucket    smallint NOT NULL,
    kind      smallint NOT NULL,
    amount    bigint NOT NULL,
    order_id  bigint NOT NULL,
    trade_id  bigint NOT NULL,
    ts_us     bigint NOT NULL
);
CREATE INDEX ledger_entries_user ON ledger_entries (user_id, entry_id DESC);
CREATE INDEX ledger_entries_seq ON ledger_entries (seq);

-- Balances of record: the ledger's available and locked buckets summed per user and asset.
CREATE TABLE balances (
    user_id   bigint NOT NULL,
    asset     text NOT NULL,
    available bigint NOT NULL,
    locked    bigint NOT NULL,
    PRIMARY KEY (user_id, asset)
);

-- Candles of every interval, maintained at ingest (on TimescaleDB: see timescale/).
CREATE TABLE candles (
    market          text NOT NULL,
    interval_s      integer NOT NULL,
    open_time_us    bigint NOT NULL,
    open            bigint NOT NULL,
    high            bigint NOT NULL,
    low             bigint NOT NULL,
    close           bigint NOT NULL,
    volume          numeric NOT NULL,
    quote_volume    numeric NOT NULL,
    trades          bigint NOT NULL,
    first_trade_id  bigint NOT NULL,
    last_trade_id   bigint NOT NULL,
    PRIMARY KEY (market, interval_s, open_time_us)
);
