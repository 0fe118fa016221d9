-- A trade's fees ride on the row of its quote leg instead of rows of their own: a trade is
-- two ledger_transfers rows (base leg, quote leg) instead of four, and the entries stay
-- the same. On a row, `debit_fee` goes from its debtor's debit bucket (the buyer's locked
-- quote) and `credit_fee` from its creditor's credit bucket (the seller's proceeds), each
-- to the fee account (user 0, available), charged to the debtor's order (`order_id`) and
-- to the creditor's (`credit_fee_order_id`, 0 without a credit fee) as before.
--
-- A fee keeps its transfer id: the next one after its row's (the debit fee first), as when
-- it had a row. One row and its fees therefore hold consecutive ids, and the ids of a
-- later row are all above them. Columns are ordered widest first: no alignment padding.
CREATE TABLE ledger_transfers_with_fees (
    transfer_id         bigint NOT NULL,
    amount              bigint NOT NULL CHECK (amount > 0),
    debit_user          bigint NOT NULL,
    credit_user         bigint NOT NULL,
    order_id            bigint NOT NULL,
    trade_id            bigint NOT NULL,
    ts_us               bigint NOT NULL,
    debit_fee           bigint NOT NULL CHECK (debit_fee >= 0),
    credit_fee          bigint NOT NULL CHECK (credit_fee >= 0),
    credit_fee_order_id bigint NOT NULL,
    debit_bucket        smallint NOT NULL,
    credit_bucket       smallint NOT NULL,
    kind                smallint NOT NULL,
    asset               text NOT NULL
);

-- Each fee row (kind 6) of 0005 onto the trade row (kind 5) of its event whose debtor paid
-- it from the same bucket (the buyer's) or whose creditor paid it out of what it received
-- (the seller's): the quote leg, the only trade row in the fee's asset.
INSERT INTO ledger_transfers_with_fees
SELECT t.transfer_id, t.amount, t.debit_user, t.credit_user, t.order_id, t.trade_id,
       t.ts_us, coalesce(df.amount, 0), coalesce(cf.amount, 0), coalesce(cf.order_id, 0),
       t.debit_bucket, t.credit_bucket, t.kind, t.asset
FROM ledger_transfers t
LEFT JOIN ledger_transfers df ON t.kind = 5 AND df.kind = 6
    AND df.transfer_id / 4 = t.transfer_id / 4 AND df.asset = t.asset
    AND df.debit_user = t.debit_user AND df.debit_bucket = t.debit_bucket
LEFT JOIN ledger_transfers cf ON t.kind = 5 AND cf.kind = 6
    AND cf.transfer_id / 4 = t.transfer_id / 4 AND cf.asset = t.asset
    AND cf.debit_user = t.credit_user AND cf.debit_bucket = t.credit_bucket
WHERE t.kind <> 6;

DO $$
BEGIN
    IF (SELECT count(*) FROM ledger_transfers WHERE kind <> 6)
           <> (SELECT count(*) FROM ledger_transfers_with_fees)
       OR (SELECT count(*) FROM ledger_transfers WHERE kind = 6)
           <> (SELECT count(*) FILTER (WHERE debit_fee > 0) + count(*) FILTER (WHERE credit_fee > 0)
               FROM ledger_transfers_with_fees) THEN
        RAISE EXCEPTION 'fee transfers do not fold onto one trade row each';
    END IF;
END $$;

DROP VIEW ledger_entries;
DROP TABLE ledger_transfers;
ALTER TABLE ledger_transfers_with_fees RENAME TO ledger_transfers;
ALTER TABLE ledger_transfers ADD PRIMARY KEY (debit_user, transfer_id);
-- GetLedger reads a user's rows as debtor by the key, as creditor of another user by this
-- index, and the fee account's by the last one: the rows that carry a fee, one per trade.
CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit_user, transfer_id)
    WHERE credit_user <> debit_user;
CREATE INDEX ledger_transfers_fees ON ledger_transfers (transfer_id)
    WHERE debit_fee > 0 OR credit_fee > 0;

-- The entries a row stands for, with the ids of 0005 (a transfer's debit is entry
-- transfer_id * 2, its credit transfer_id * 2 + 1): its own two, then each fee's two.
-- GetLedger unfolds the rows it finds with it too.
CREATE FUNCTION ledger_transfer_entries(t ledger_transfers)
RETURNS TABLE (entry_id bigint, user_id bigint, bucket smallint, kind smallint,
               amount bigint, order_id bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT * FROM (VALUES
        (t.transfer_id * 2, t.debit_user, t.debit_bucket, t.kind, -t.amount, t.order_id),
        (t.transfer_id * 2 + 1, t.credit_user, t.credit_bucket, t.kind, t.amount, t.order_id),
        ((t.transfer_id + 1) * 2, t.debit_user, t.debit_bucket, 6::smallint, -t.debit_fee,
         t.order_id),
        ((t.transfer_id + 1) * 2 + 1, 0::bigint, 1::smallint, 6::smallint, t.debit_fee,
         t.order_id),
        ((t.transfer_id + CASE WHEN t.debit_fee > 0 THEN 2 ELSE 1 END) * 2, t.credit_user,
         t.credit_bucket, 6::smallint, -t.credit_fee, t.credit_fee_order_id),
        ((t.transfer_id + CASE WHEN t.debit_fee > 0 THEN 2 ELSE 1 END) * 2 + 1, 0::bigint,
         1::smallint, 6::smallint, t.credit_fee, t.credit_fee_order_id)
    ) AS e(entry_id, user_id, bucket, kind, amount, order_id)
    WHERE e.amount <> 0
$$;

CREATE VIEW ledger_entries AS
    SELECT e.entry_id, t.transfer_id / 4 AS seq, e.user_id, t.asset, e.bucket, e.kind,
           e.amount, e.order_id, t.trade_id, t.ts_us
    FROM ledger_transfers t CROSS JOIN LATERAL ledger_transfer_entries(t) e;
