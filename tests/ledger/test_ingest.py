"""Ingest into a real PostgreSQL from a real engine: every event once, rows that agree.

The engine runs in-process on an ephemeral port; ingest subscribes to it over gRPC like the
service does. After a random trading session, the stored history is checked against the
engine's memory and against itself (double entry, candles from trades, reconcile). The
tests marked BOTH_BACKENDS run on plain PostgreSQL and on TimescaleDB, whose track leaves
candles to its continuous aggregates; the cursor's own logic is the same on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest

from exchange.engine.v1 import engine_pb2_grpc as epb_grpc
from ledger_svc.db import create_pool
from ledger_svc.ingest import Ingest
from ledger_svc.migrate import migrate, timescale_in_use
from ledger_svc.projection import Batch, Catalog, project
from ledger_svc.queries import DAY_US, Directory, get_tickers
from ledger_svc.reconcile import balances_as_of, reconcile
from ledger_svc.writer import COPY_FROM_ROWS, STORE_BATCH, CursorMoved, read_cursor, store
from tests.conftest import BOTH_BACKENDS
from tests.engine.conftest import RunningEngine
from tests.ledger.events import all_events
from tests.ledger.trading import Trader
from tradekit.candles import INTERVALS_S, WEEK_OFFSET_US


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, connect_timeout=10)
    async with pool.acquire() as conn:
        await migrate(conn)
    yield pool
    await pool.close()


async def run_ingest(
    pool: asyncpg.Pool, address: str, max_batch_events: int = 20_000
) -> tuple[Ingest, asyncio.Task[None], grpc.aio.Channel]:
    channel = grpc.aio.insecure_channel(address)
    ingest = Ingest(pool, channel, max_batch_events=max_batch_events)
    return ingest, asyncio.create_task(ingest.run()), channel


async def stop(task: asyncio.Task[None], channel: grpc.aio.Channel) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await channel.close()


@BOTH_BACKENDS
async def test_every_event_is_stored_once_and_agrees_with_the_engine(
    engine: RunningEngine, pool: asyncpg.Pool
) -> None:
    core = engine.runtime.engine
    ingest, task, channel = await run_ingest(pool, engine.address, max_batch_events=97)
    trader = Trader(engine.stub, seed=5)
    await trader.fund()
    await trader.run(300)
    # Stop ingest mid-session and start it again: it resumes from the stored cursor.
    await stop(task, channel)
    await trader.run(300)
    ingest, task, channel = await run_ingest(pool, engine.address, max_batch_events=50)
    async with asyncio.timeout(30):
        await ingest.wait_for(core.seq)

    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT last_seq FROM ingest_cursor") == core.seq
        # Exactly once: every trade and every accepted order is there once.
        trades = await conn.fetchval("SELECT count(DISTINCT trade_id) FROM trades")
        assert trades == await conn.fetchval("SELECT count(*) FROM trades")
        assert trades == core.next_trade_id - 1 > 20
        assert await conn.fetchval("SELECT count(*) FROM orders") == core.next_order_id - 1
        # Double entry: per transaction and asset, the entries sum to zero, and the balances
        # of record are the sums of the entries of the available and locked buckets.
        unbalanced = await conn.fetch(
            "SELECT seq, asset FROM ledger_entries GROUP BY seq, asset HAVING sum(amount) <> 0"
        )
        assert unbalanced == []
        from_entries = await conn.fetch(
            """SELECT user_id, asset, sum(amount) FILTER (WHERE bucket = 1),
                      sum(amount) FILTER (WHERE bucket = 2)
               FROM ledger_entries WHERE bucket <> 3 GROUP BY 1, 2"""
        )
        assert {(r[0], r[1]): (r[2] or 0, r[3] or 0) for r in from_entries} == {
            (r[0], r[1]): (r[2], r[3])
            for r in await conn.fetch("SELECT user_id, asset, available, locked FROM balances")
        }
        # Balances of record equal the engine's accounts.
        stored = {
            (r[0], r[1]): (r[2], r[3])
            for r in await conn.fetch("SELECT user_id, asset, available, locked FROM balances")
            if r[2] or r[3]
        }
        expected = {
            (user, asset): (b.available, b.locked)
            for user, asset, b in core.accounts.items()
            if b.available or b.locked
        }
        assert stored == expected
        # Open orders agree with the engine's book.
        rows = await conn.fetch(
            "SELECT order_id, executed_quantity, executed_quote_quantity, fees_paid, locked"
            " FROM orders WHERE status IN (1, 2)"
        )
        assert {r[0]: tuple(r[1:]) for r in rows} == {
            o.id: (o.filled, o.filled_quote, o.fees, o.locked) for o in core.orders.values()
        }
        # Candles equal an aggregation of the stored trades, for every interval.
        for interval in INTERVALS_S:
            width = interval * 1_000_000
            offset = WEEK_OFFSET_US if interval == 604_800 else 0
            expected_candles = await conn.fetch(
                """SELECT market, (ts_us - $2) / $1 * $1 + $2 AS start,
                          (array_agg(price ORDER BY trade_id))[1],
                          max(price), min(price),
                          (array_agg(price ORDER BY trade_id DESC))[1],
                          sum(quantity), sum(quote_quantity), count(*)
                   FROM trades GROUP BY 1, 2 ORDER BY 1, 2""",
                width,
                offset,
            )
            candles = await conn.fetch(
                """SELECT market, open_time_us, open, high, low, close, volume, quote_volume,
                          trades
                   FROM candles WHERE interval_s = $1 ORDER BY 1, 2""",
                interval,
            )
            assert [tuple(r) for r in candles] == [tuple(r) for r in expected_candles]
        reply = await reconcile(conn, epb_grpc.EngineServiceStub(channel))
        assert reply.seq == core.seq
        assert reply.balances_checked == len(expected)
        assert list(reply.differences) == []
    await stop(task, channel)


async def table_scans(conn: asyncpg.Connection[asyncpg.Record], table: str) -> tuple[int, int]:
    """(sequential, index) scans of `table` so far, this connection's included."""
    await conn.execute("SELECT pg_stat_force_next_flush()")  # flushed once it is idle
    row = await conn.fetchrow(
        "SELECT seq_scan, idx_scan FROM pg_stat_user_tables WHERE relname = $1", table
    )
    assert row is not None
    return row[0], row[1]


async def traded_halves(engine: RunningEngine, seed: int, orders: int) -> tuple[Batch, Batch]:
    """A random trader's history, projected as two batches: its first half, then the rest
    (fills and closes of orders the first one stored)."""
    trader = Trader(engine.stub, seed=seed)
    await trader.fund()
    await trader.run(orders)
    events = await all_events(engine.stub, engine.runtime.engine.seq)
    catalog, half = Catalog(), len(events) // 2
    return project(events[:half], catalog, 1), project(events[half:], catalog, half + 1)


@BOTH_BACKENDS
async def test_order_updates_probe_the_key_and_never_scan_orders(
    engine: RunningEngine, database_url: str
) -> None:
    # Fills and closes of orders that an earlier batch stored: whatever the batch's size,
    # each finds its order by the key, so the cost does not grow with the orders stored.
    earlier, later = await traded_halves(engine, seed=37, orders=400)
    assert len(later.order_deltas) > 20
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        candles = not await timescale_in_use(conn)  # TimescaleDB aggregates them itself
        await store(conn, earlier, candles=candles)
        seq_scans, index_scans = await table_scans(conn, "orders")
        await store(conn, later, candles=candles)
        assert await table_scans(conn, "orders") == (
            seq_scans,
            index_scans + len(later.order_deltas),
        )
    finally:
        await conn.close()


@BOTH_BACKENDS
@pytest.mark.parametrize("copy_from_rows", [COPY_FROM_ROWS, 0])  # as it comes, or by COPY
async def test_a_batch_is_one_statement_and_a_stale_one_writes_nothing(
    engine: RunningEngine, database_url: str, copy_from_rows: int
) -> None:
    earlier, later = await traded_halves(engine, seed=41, orders=200)
    assert all((later.trades, later.order_deltas, later.transfers))  # every kind of row
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        candles = not await timescale_in_use(conn)
        await store(conn, earlier, candles=candles, copy_from_rows=copy_from_rows)
        sent: list[str] = []
        with conn.query_logger(lambda record: sent.append(record.query)):
            await store(conn, later, candles=candles, copy_from_rows=copy_from_rows)
            await asyncio.sleep(0)  # the logger is called soon after, not at once
        if copy_from_rows:  # one round trip: rows, cursor and commit together
            assert sent == [STORE_BATCH]
        counts = "SELECT ((SELECT count(*) FROM trades), (SELECT count(*) FROM order_events))"
        stored = tuple(await conn.fetchval(counts))
        assert stored == (len(earlier.trades) + len(later.trades),
                          len(earlier.order_events) + len(later.order_events))  # fmt: skip
        for stale in (earlier, later):  # already stored: another writer got there first
            with pytest.raises(CursorMoved, match=f"cursor is at {later.last_seq}"):
                await store(conn, stale, candles=candles, copy_from_rows=copy_from_rows)
        assert tuple(await conn.fetchval(counts)) == stored
        assert await read_cursor(conn) == later.last_seq
    finally:
        await conn.close()


@BOTH_BACKENDS
async def test_reconcile_reports_a_difference(engine: RunningEngine, pool: asyncpg.Pool) -> None:
    ingest, task, channel = await run_ingest(pool, engine.address)
    trader = Trader(engine.stub, seed=9)
    await trader.fund()
    async with asyncio.timeout(30):
        await ingest.wait_for(engine.runtime.engine.seq)
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE balances SET available = available - 1 WHERE user_id = 2 AND asset = 'INR'"
        )
        reply = await reconcile(conn, epb_grpc.EngineServiceStub(channel))
    (diff,) = reply.differences
    assert (diff.user_id, diff.asset) == (2, "INR")
    assert (diff.engine_available, diff.ledger_available) == ("1000000.00", "999999.99")
    await stop(task, channel)


async def test_a_second_ingester_cannot_store_the_same_events(
    engine: RunningEngine, pool: asyncpg.Pool
) -> None:
    # Two replicas ingesting at once: each batch is stored by exactly one of them.
    first, task1, ch1 = await run_ingest(pool, engine.address, max_batch_events=7)
    second, task2, ch2 = await run_ingest(pool, engine.address, max_batch_events=5)
    trader = Trader(engine.stub, seed=13)
    await trader.fund()
    await trader.run(300)
    seq = engine.runtime.engine.seq
    async with asyncio.timeout(30):
        await asyncio.gather(first.wait_for(seq), second.wait_for(seq))
    async with pool.acquire() as conn:
        core = engine.runtime.engine
        assert await conn.fetchval("SELECT count(*) FROM trades") == core.next_trade_id - 1
        assert await conn.fetchval("SELECT count(*) FROM orders") == core.next_order_id - 1
        assert await conn.fetchval("SELECT count(*) FROM order_events") == await conn.fetchval(
            "SELECT count(*) FROM (SELECT DISTINCT seq, order_id FROM order_events) AS d"
        )
    await stop(task1, ch1)
    await stop(task2, ch2)


@BOTH_BACKENDS
async def test_balances_go_back_to_an_earlier_seq(
    engine: RunningEngine, pool: asyncpg.Pool
) -> None:
    # Reconcile compares at the engine's seq while the ledger may already be further on.
    ingest, task, channel = await run_ingest(pool, engine.address)
    trader = Trader(engine.stub, seed=17)
    await trader.fund()
    await trader.run(300)
    stored = engine.runtime.engine.seq
    async with asyncio.timeout(30):
        await ingest.wait_for(stored)
    events = await all_events(engine.stub, stored)
    stub = epb_grpc.EngineServiceStub(channel)
    async with pool.acquire() as conn:
        for seq in (stored - 1, stored * 2 // 3, stored):
            expected = project(events[:seq], Catalog(), 1).balances
            ours, _ = await balances_as_of(conn, stub, seq)
            assert {k: v for k, v in ours.items() if v != [0, 0]} == {
                k: v for k, v in expected.items() if v != [0, 0]
            }
    await stop(task, channel)


@BOTH_BACKENDS
async def test_the_24h_window_starts_to_the_microsecond(
    engine: RunningEngine, pool: asyncpg.Pool
) -> None:
    # The ticker reads the trades of its first, partial minute; every window start between
    # the trades must count exactly the trades from it on.
    ingest, task, channel = await run_ingest(pool, engine.address)
    trader = Trader(engine.stub, seed=19)
    await trader.fund()
    await trader.run(400)
    async with asyncio.timeout(30):
        await ingest.wait_for(engine.runtime.engine.seq)
    async with pool.acquire() as conn:
        directory = await Directory.load(conn)
        market = await conn.fetchval(
            "SELECT market FROM trades GROUP BY market ORDER BY count(*) DESC LIMIT 1"
        )
        times = [r[0] for r in await conn.fetch(
            "SELECT ts_us FROM trades WHERE market = $1 ORDER BY trade_id", market
        )]  # fmt: skip
        assert len(times) > 20
        for start in sorted({*times[::5], times[-1], times[0] - 1, times[-1] + 1}):
            (ticker,) = await get_tickers(conn, directory, [market], start + DAY_US)
            expected = await conn.fetch(
                """SELECT count(*), coalesce(min(trade_id), 0), coalesce(max(trade_id), 0)
                   FROM trades WHERE market = $1 AND ts_us >= $2""",
                market,
                start,
            )
            assert (ticker.trades, ticker.first_trade_id, ticker.last_trade_id) == tuple(
                expected[0]
            )
    await stop(task, channel)
