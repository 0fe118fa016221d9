"""The whole-stack fault suite (issue 9): seeded load through the gateway while services are
killed and frozen, then checks that nothing acknowledged was lost or duplicated.

`python -m chaos --seconds N --seed S --report PATH` (`make chaos`) runs trials until the time
is up and writes a JSON report. The parts:

- `stack`: every service and store of `make run`, on free ports in a temporary folder, under
  the launcher's own Supervisor (which restarts a killed child with backoff).
- `load`: users trading through the gateway's REST API and asking for withdrawals; `custody`:
  deposits reported and withdrawals decided through the engine's admin RPCs; `record` keeps
  what each request was answered (acknowledged, refused, or of unknown fate).
- `faults`: SIGKILL and SIGSTOP/SIGCONT at seeded moments, timing each recovery.
- `depth`: a WebSocket client keeping a book from REST depth plus diffs through the faults.
- `journal`, `checks` and `capital_checks`: after a trial, the engine's event stream from
  seq 1 against the acknowledgements, PostgreSQL, the ledger's reconciliation, balances,
  books, deposits and withdrawals.
- `suite` runs the trials; `report` sums them up.
"""
