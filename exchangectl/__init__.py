"""exchangectl: the operator's command-line tool, a gRPC client of the engine and the ledger.

Every command returns a `Result` (data for `--json`, text for people, an exit status);
failures are `CtlError`s with their own exit status (see `errors`).
"""
