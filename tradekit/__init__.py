"""What more than one service of the exchange needs to agree on: values and rules, no state.

- `money`: decimal strings <-> integer smallest units, exactly (no float holds an amount);
- `markets`: assets and market specs as configured (decimal strings);
- `candles`: the candle intervals, where each starts, and the one trade accumulator that the
  ledger's projection and the stream's live candles both use;
- `topics`: stream topic names; `book`: a depth book from snapshot + diffs and the rules of
  its update-id chain (stream_svc publishes them, the gateway relays them);
- `backpack`: the Backpack dialect's signing strings, instruction and status names;
- `engine_client`: batched order entry over the engine's `Execute` stream (the gateway and
  the market maker). It is the only module here that does I/O.

The import rule (tests/test_import_boundaries.py): a service imports only the generated
contracts (`exchange`), `servicekit`, `tradekit` and its own modules; the engine core
(engine_svc/core) imports only itself and tradekit's values; tradekit imports only
`exchange`, `servicekit` and itself.
"""
