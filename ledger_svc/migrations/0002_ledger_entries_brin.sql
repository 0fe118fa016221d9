-- ledger_entries.seq only grows: a BRIN index answers "entries after seq E" (reconcile) as
-- well as the btree did, for a fraction of its cost on every insert.
DROP INDEX ledger_entries_seq;
CREATE INDEX ledger_entries_seq ON ledger_entries USING brin (seq);
