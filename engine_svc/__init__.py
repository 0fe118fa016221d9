"""engine_svc: the sequencer of the exchange (order books, accounts, journal, snapshots)."""
