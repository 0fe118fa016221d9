"""The ledger: durable history and accounts of record in PostgreSQL (see ../README.md)."""
