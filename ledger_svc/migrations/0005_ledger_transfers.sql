-- The double-entry ledger as one row per movement: a transfer of `amount` of `asset` from
-- (debit_user, debit_bucket) to (credit_user, credit_bucket). Its two entries (the debit
-- -amount, the credit +amount) were two mirrored rows of ledger_entries; stored once they
-- cost ingest half the rows. Every transaction (engine event) still sums to zero per asset,
-- by construction, and `ledger_entries` stays, as a view with its former columns.
--
-- transfer_id = seq * 4 + the movement's place in its event (a trade moves base, quote and
-- two fees: at most 4), so ids come from the engine's seq, not from a sequence. A transfer's
-- entries are entry_id = transfer_id * 2 (the debit) and transfer_id * 2 + 1 (the credit).
-- bucket: 1 available, 2 locked, 3 external; kind: 1 deposit, 2 withdraw, 3 lock,
-- 4 unlock, 5 trade, 6 fee. Columns are ordered widest first: no alignment padding.
CREATE TABLE ledger_transfers (
    transfer_id   bigint NOT NULL,
    amount        bigint NOT NULL CHECK (amount > 0),
    debit_user    bigint NOT NULL,
    credit_user   bigint NOT NULL,
    order_id      bigint NOT NULL,
    trade_id      bigint NOT NULL,
    ts_us         bigint NOT NULL,
    debit_bucket  smallint NOT NULL,
    credit_bucket smallint NOT NULL,
    kind          smallint NOT NULL,
    asset         text NOT NULL,
    PRIMARY KEY (debit_user, transfer_id)
);
-- GetLedger reads a user's transfers from both keys. A lock, an unlock, a deposit or a
-- withdrawal moves between two buckets of one user, found by the key above: only the
-- transfers between two users (trades, fees) need this second index.
CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit_user, transfer_id)
    WHERE credit_user <> debit_user;

-- The existing entries, paired: ingest wrote each debit right before its credit, so the
-- credit's entry_id is the debit's plus one.
INSERT INTO ledger_transfers
SELECT d.seq * 4 + row_number() OVER (PARTITION BY d.seq ORDER BY d.entry_id) - 1,
       c.amount, d.user_id, c.user_id, d.order_id, d.trade_id, d.ts_us,
       d.bucket, c.bucket, d.kind, d.asset
FROM ledger_entries d
JOIN ledger_entries c ON c.entry_id = d.entry_id + 1 AND c.seq = d.seq AND c.asset = d.asset
    AND c.kind = d.kind AND c.amount = -d.amount
WHERE d.amount < 0;

DO $$
BEGIN
    IF (SELECT count(*) FROM ledger_entries) <> 2 * (SELECT count(*) FROM ledger_transfers) THEN
        RAISE EXCEPTION 'ledger_entries do not pair up into transfers';
    END IF;
END $$;

DROP TABLE ledger_entries;

-- Each transfer's two entries, as each user sees them (what GetLedger lists).
CREATE VIEW ledger_entries AS
    SELECT transfer_id * 2 AS entry_id, transfer_id / 4 AS seq, debit_user AS user_id,
           asset, debit_bucket AS bucket, kind, -amount AS amount, order_id, trade_id, ts_us
    FROM ledger_transfers
    UNION ALL
    SELECT transfer_id * 2 + 1, transfer_id / 4, credit_user, asset, credit_bucket, kind,
           amount, order_id, trade_id, ts_us
    FROM ledger_transfers;
