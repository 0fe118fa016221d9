"""Storing a projected batch: one transaction, cursor included (exactly-once ingest).

The transaction is one statement, `store_batch` (migration 0014), which first locks the
cursor row and checks that it still stands just before the batch. Two ledger replicas
ingesting at once therefore cannot both store a batch: the second one finds the cursor
moved, writes nothing and resumes from the stored position.
"""

from __future__ import annotations

from typing import Any

from exchange.common.v1 import common_pb2 as cpb
from ledger_svc.db import Conn
from ledger_svc.projection import (
    ORDER_COLUMNS,
    ORDER_EVENT_COLUMNS,
    TRADE_COLUMNS,
    TRANSFER_COLUMNS,
    Batch,
    Catalog,
)


class CursorMoved(RuntimeError):
    """The stored cursor is not where this writer expected it: someone else ingested."""


async def read_cursor(conn: Conn) -> int:
    seq: int = await conn.fetchval("SELECT last_seq FROM ingest_cursor")
    return seq


async def load_catalog(conn: Conn) -> Catalog:
    catalog = Catalog()
    for symbol, decimals in await conn.fetch("SELECT symbol, decimals FROM assets"):
        catalog.asset_decimals[symbol] = decimals
    for symbol, base, quote in await conn.fetch("SELECT symbol, base, quote FROM markets"):
        catalog.add_market(symbol, base, quote)
    catalog.fired = {
        order_id
        for (order_id,) in await conn.fetch(
            "SELECT order_id FROM orders WHERE status = 7 AND triggered_at_us IS NOT NULL"
        )
    }
    return catalog


# From this many inserted rows on, a batch's four big tables go by COPY first, in the same
# transaction: a row costs the ledger about a third of what it costs as an array element
# (asyncpg encodes a composite element through Python-level checks), which outweighs the
# COPYs' round trips (two per table, plus BEGIN and COMMIT) once a batch is this large.
COPY_FROM_ROWS = 1_000


async def store(
    conn: Conn, batch: Batch, *, candles: bool = True, copy_from_rows: int = COPY_FROM_ROWS
) -> None:
    """Write `batch` and move the cursor to its last event, atomically. Raises CursorMoved.

    `candles` False leaves candles to the database (TimescaleDB continuous aggregates).
    A batch is one statement, one round trip: `store_batch` (migration 0014) applies every
    table's rows and the cursor as that statement's own transaction. A batch of
    `copy_from_rows` rows or more (catching up) COPYs its orders, order events, trades and
    transfers first, in one transaction with that statement.
    """
    rows = len(batch.new_orders) + len(batch.order_events) + len(batch.trades)
    if rows + len(batch.transfers) < copy_from_rows:
        await _store_batch(conn, batch, candles, copied=False)
        return
    copies: list[tuple[str, list[Any], tuple[str, ...]]] = [
        ("orders", list(batch.new_orders.values()), ORDER_COLUMNS),
        ("order_events", batch.order_events, ORDER_EVENT_COLUMNS),
        ("trades", batch.trades, TRADE_COLUMNS),
        ("ledger_transfers", batch.transfers, TRANSFER_COLUMNS),
    ]
    async with conn.transaction():
        # The cursor first, locked to the commit: a stale batch stops here, not at a key
        # its rows would duplicate, and a writer doing the same meanwhile waits.
        stored = await conn.fetchval("SELECT last_seq FROM ingest_cursor FOR UPDATE")
        if stored != batch.first_seq - 1:
            raise _moved(stored, batch)
        for table, records, columns in copies:
            if records:
                await conn.copy_records_to_table(table, records=records, columns=columns)
        await _store_batch(conn, batch, candles, copied=True)


async def _store_batch(conn: Conn, batch: Batch, candles: bool, copied: bool) -> None:
    """`store_batch` with the batch's rows; without those of the COPYed tables if `copied`."""
    stored = await conn.fetchval(
        STORE_BATCH,
        batch.first_seq - 1,
        batch.last_seq,
        batch.last_ts_us,
        batch.assets,
        [(*_market_row(m), seq) for m, seq in batch.markets],
        batch.market_status,
        [] if copied else [tuple(row) for row in batch.new_orders.values()],  # not sub-arrays
        [(order_id, d.executed_quantity, d.executed_quote_quantity, d.fees_paid, d.locked,
          d.status, d.close_reason, d.updated_at_us)
         for order_id, d in batch.order_deltas.items()],
        [tuple(row) for row in batch.conditions.values()],
        [] if copied else batch.order_events,
        [] if copied else batch.trades,
        [] if copied else batch.transfers,
        [(user, asset, d[0], d[1]) for (user, asset), d in batch.balances.items()],
        _candle_rows(batch) if candles else [],
    )  # fmt: skip
    if stored is not None:
        raise _moved(stored, batch)


def _moved(stored: int, batch: Batch) -> CursorMoved:
    return CursorMoved(f"cursor is at {stored}, batch starts at {batch.first_seq}")


STORE_BATCH = "SELECT store_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"


def _market_row(m: cpb.Market) -> tuple[object, ...]:
    return (
        m.symbol, m.base, m.quote, m.tick_size, m.step_size, m.min_quantity, m.min_notional,
        m.max_quantity, m.max_price, m.maker_fee_bps, m.taker_fee_bps, m.status,
    )  # fmt: skip


def _candle_rows(batch: Batch) -> list[tuple[object, ...]]:
    return [
        (market, interval, start, c.open, c.high, c.low, c.close, c.volume, c.quote_volume,
         c.trades, c.first_trade_id, c.last_trade_id)
        for (market, interval, start), c in batch.candles.items()
    ]  # fmt: skip
