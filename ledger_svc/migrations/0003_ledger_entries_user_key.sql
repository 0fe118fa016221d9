-- One index instead of two on the busiest table: the primary key becomes (user_id, entry_id),
-- which is what GetLedger reads (a user's entries, newest first, by a backward scan), and
-- the index on entry_id alone goes, since no query looks an entry up by its id alone.
-- entry_id stays unique: it comes from the identity sequence.
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_pkey;
DROP INDEX ledger_entries_user;
ALTER TABLE ledger_entries ADD PRIMARY KEY (user_id, entry_id);
