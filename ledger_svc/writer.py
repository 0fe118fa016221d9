"""Storing a projected batch: one transaction, cursor included (exactly-once ingest).

The transaction first locks the cursor row and checks that it still stands just before the
batch. Two ledger replicas ingesting at once therefore cannot both store a batch: the second
one finds the cursor moved, rolls back and resumes from the stored position.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger_svc.db import Conn
from ledger_svc.projection import (
    CONDITION_COLUMNS,
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


async def store(conn: Conn, batch: Batch, *, candles: bool = True) -> None:
    """Write `batch` and move the cursor to its last event, atomically. Raises CursorMoved.

    `candles` False leaves candles to the database (TimescaleDB continuous aggregates).
    """
    async with conn.transaction():
        # Checked and moved in one round trip: the row stays locked to the commit, so a
        # replica doing the same meanwhile waits, then finds the cursor moved.
        moved = await conn.execute(
            "UPDATE ingest_cursor SET last_seq = $1, last_ts_us = $2 WHERE last_seq = $3",
            batch.last_seq,
            batch.last_ts_us,
            batch.first_seq - 1,
        )
        if moved != "UPDATE 1":
            stored = await conn.fetchval("SELECT last_seq FROM ingest_cursor")
            raise CursorMoved(f"cursor is at {stored}, batch starts at {batch.first_seq}")
        await _store_catalog(conn, batch)
        if batch.new_orders:
            await conn.copy_records_to_table(
                "orders", records=list(batch.new_orders.values()), columns=ORDER_COLUMNS
            )
        if batch.order_deltas:
            await _update_orders(conn, batch)
        if batch.conditions:
            await _update_conditions(conn, batch)
        if batch.order_events:
            await conn.copy_records_to_table(
                "order_events", records=batch.order_events, columns=ORDER_EVENT_COLUMNS
            )
        if batch.trades:
            await conn.copy_records_to_table("trades", records=batch.trades, columns=TRADE_COLUMNS)
        if batch.transfers:
            await conn.copy_records_to_table(
                "ledger_transfers", records=batch.transfers, columns=TRANSFER_COLUMNS
            )
        if batch.balances:
            await _update_balances(conn, batch)
        if candles and batch.candles:
            await _update_candles(conn, batch)


async def _store_catalog(conn: Conn, batch: Batch) -> None:
    if batch.assets:
        await conn.executemany(
            "INSERT INTO assets (symbol, decimals, seq) VALUES ($1, $2, $3)", batch.assets
        )
    if batch.markets:
        await conn.executemany(
            """INSERT INTO markets (symbol, base, quote, tick_size, step_size, min_quantity,
                   min_notional, max_quantity, max_price, maker_fee_bps, taker_fee_bps,
                   status, seq)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
            [
                (
                    m.symbol,
                    m.base,
                    m.quote,
                    m.tick_size,
                    m.step_size,
                    m.min_quantity,
                    m.min_notional,
                    m.max_quantity,
                    m.max_price,
                    m.maker_fee_bps,
                    m.taker_fee_bps,
                    m.status,
                    seq,
                )
                for m, seq in batch.markets
            ],
        )
    if batch.market_status:
        await conn.executemany(
            "UPDATE markets SET status = $2, seq = $3 WHERE symbol = $1", batch.market_status
        )


async def _update_orders(conn: Conn, batch: Batch) -> None:
    columns = _transpose(
        (order_id, d.executed_quantity, d.executed_quote_quantity, d.fees_paid, d.locked,
         d.status, d.close_reason, d.updated_at_us)
        for order_id, d in batch.order_deltas.items()
    )  # fmt: skip
    # Each delta finds its order by the key. Knowing a large batch's size (in the first,
    # custom plans of the statement), the planner would rather hash the whole orders table,
    # a scan that grows with the history: joins other than by index are off for the rest
    # of this transaction, which makes no other join.
    await conn.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")
    # A fill moves a NEW order to PARTIALLY_FILLED; a close sets its final status.
    await conn.execute(
        """UPDATE orders AS o SET
               executed_quantity = o.executed_quantity + d.exec_q,
               executed_quote_quantity = o.executed_quote_quantity + d.exec_qq,
               fees_paid = o.fees_paid + d.fees,
               locked = o.locked + d.locked,
               status = CASE WHEN d.status <> 0 THEN d.status
                             WHEN d.exec_q > 0 AND o.status = 1 THEN 2
                             ELSE o.status END,
               close_reason = CASE WHEN d.status <> 0 THEN d.reason ELSE o.close_reason END,
               updated_at_us = d.updated
           FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],
                       $6::smallint[], $7::smallint[], $8::bigint[])
                AS d(order_id, exec_q, exec_qq, fees, locked, status, reason, updated)
           WHERE o.order_id = d.order_id""",
        *columns,
    )


async def _update_conditions(conn: Conn, batch: Batch) -> None:
    """The conditional fields of rows that exist by now (inserted above, or before)."""
    columns = _transpose(tuple(row) for row in batch.conditions.values())
    sets = ", ".join(f"{c} = COALESCE(d.{c}, o.{c})" for c in CONDITION_COLUMNS[1:])
    await conn.execute(
        f"""UPDATE orders AS o SET {sets}
            FROM unnest($1::bigint[], $2::bigint[], $3::boolean[], $4::bigint[], $5::bigint[],
                        $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],
                        $11::text[]) AS d({", ".join(CONDITION_COLUMNS)})
            WHERE o.order_id = d.order_id""",
        *columns,
    )


async def _update_balances(conn: Conn, batch: Batch) -> None:
    columns = _transpose((user, asset, d[0], d[1]) for (user, asset), d in batch.balances.items())
    await conn.execute(
        """INSERT INTO balances AS b (user_id, asset, available, locked)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[])
           ON CONFLICT (user_id, asset) DO UPDATE SET
               available = b.available + excluded.available,
               locked = b.locked + excluded.locked""",
        *columns,
    )


async def _update_candles(conn: Conn, batch: Batch) -> None:
    columns = _transpose(
        (market, interval, start, c.open, c.high, c.low, c.close, c.volume, c.quote_volume,
         c.trades, c.first_trade_id, c.last_trade_id)
        for (market, interval, start), c in batch.candles.items()
    )  # fmt: skip
    # Events arrive in order, so an existing candle keeps its open and takes the batch's close.
    await conn.execute(
        """INSERT INTO candles AS c (market, interval_s, open_time_us, open, high, low, close,
               volume, quote_volume, trades, first_trade_id, last_trade_id)
           SELECT * FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::bigint[],
               $5::bigint[], $6::bigint[], $7::bigint[], $8::numeric[], $9::numeric[],
               $10::bigint[], $11::bigint[], $12::bigint[])
           ON CONFLICT (market, interval_s, open_time_us) DO UPDATE SET
               high = greatest(c.high, excluded.high),
               low = least(c.low, excluded.low),
               close = excluded.close,
               volume = c.volume + excluded.volume,
               quote_volume = c.quote_volume + excluded.quote_volume,
               trades = c.trades + excluded.trades,
               last_trade_id = excluded.last_trade_id""",
        *columns,
    )


def _transpose(rows: Iterable[tuple[object, ...]]) -> list[list[object]]:
    """Rows to columns, for statements that take one array parameter per column."""
    return [list(column) for column in zip(*rows, strict=True)]
