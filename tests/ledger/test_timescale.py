"""The ledger's TimescaleDB track beside the plain one: the same history answers the same
queries, a plain database moves onto the track, and the policies do what they claim.

One recorded history is stored into a database of the plain server and into two of the
TimescaleDB server (one on its track from the start, one migrated there from plain).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from exchange.ledger.v1 import ledger_pb2 as lpb
from launcher.ports import free_port
from launcher.postgres import LocalPostgres, create_database, timescale_bin_dir
from ledger_svc.db import Conn
from ledger_svc.migrate import migrate, timescale_in_use, timescale_policies
from ledger_svc.projection import TRADE_COLUMNS, Batch, Catalog, project
from ledger_svc.queries import DAY_US, Directory, get_klines, get_tickers, get_trades
from ledger_svc.writer import load_catalog, store
from tests.conftest import _supervisor
from tests.engine.conftest import RunningEngine
from tests.ledger.events import all_events
from tests.ledger.trading import Trader
from tradekit.candles import INTERVALS_S

pytestmark = pytest.mark.skipif(
    timescale_bin_dir() is None, reason="TimescaleDB is not built here (`make deps`)"
)

AGGREGATES = ("candles_1m", "candles_5m", "candles_15m", "candles_30m", "candles_1h",
              "candles_4h", "candles_1d", "candles_1w")  # fmt: skip


async def new_database(dsn: str) -> AsyncIterator[Conn]:
    url = urlsplit(dsn)._replace(path=f"/test_{uuid.uuid4().hex}").geturl()
    await create_database(url)
    conn = await asyncpg.connect(url)
    yield conn
    await conn.close()


@pytest.fixture
async def plain(postgres_dsn: str) -> AsyncIterator[Conn]:
    async for conn in new_database(postgres_dsn):
        yield conn


@pytest.fixture
async def timescale(timescale_dsn: str) -> AsyncIterator[Conn]:
    async for conn in new_database(timescale_dsn):
        yield conn


@pytest.fixture
async def upgraded(timescale_dsn: str) -> AsyncIterator[Conn]:
    async for conn in new_database(timescale_dsn):
        yield conn


async def history(engine: RunningEngine, trader: Trader) -> Batch:
    await trader.fund()
    await trader.run(300)
    return project(await all_events(engine.stub, engine.runtime.engine.seq), Catalog(), 1)


async def answers(conn: Conn, now_us: int) -> list[object]:
    """What the queries that read trades and candles answer, for every market and interval."""
    directory = await Directory.load(conn)
    markets = sorted(directory.markets)
    found: list[object] = [await get_tickers(conn, directory, markets, now_us)]
    for market in markets:
        page = lpb.GetTradesRequest(market=market, limit=7)
        found.append(await get_trades(conn, directory, page))
        found.append(await get_trades(conn, directory, lpb.GetTradesRequest(market=market)))
        for interval in INTERVALS_S:
            request = lpb.GetKlinesRequest(market=market, interval=interval)  # type: ignore[arg-type]
            found.append(await get_klines(conn, directory, request, now_us))
    return found


async def candles(conn: Conn) -> list[tuple[object, ...]]:
    rows = await conn.fetch("SELECT * FROM candles ORDER BY market, interval_s, open_time_us")
    return [tuple(r) for r in rows]


async def refresh(conn: Conn) -> None:
    for name in AGGREGATES:
        await conn.execute(f"CALL refresh_continuous_aggregate('{name}', NULL, NULL)")


async def test_both_tracks_answer_alike_and_a_plain_database_moves_over(
    engine: RunningEngine, plain: Conn, timescale: Conn, upgraded: Conn
) -> None:
    trader = Trader(engine.stub, seed=41)
    batch = await history(engine, trader)
    assert len(batch.trades) > 20
    now_us = batch.last_ts_us + 1
    await migrate(plain)
    await store(plain, batch)
    await migrate(timescale)
    await unscheduled(timescale)
    assert await timescale_in_use(timescale)
    await store(timescale, batch, candles=False)
    # A database that began plain on this server, then starts with the track on.
    await migrate(upgraded, use_timescale=False)
    await store(upgraded, batch)
    assert await migrate(upgraded) == ["timescale/0001_hypertables_and_candles"]

    expected_candles, expected = await candles(plain), await answers(plain, now_us)
    assert {r[1] for r in expected_candles} == set(INTERVALS_S)
    for conn in (timescale, upgraded):
        # Real-time aggregation: nothing is materialized yet, every bucket comes from trades.
        assert await candles(conn) == expected_candles
        assert await answers(conn, now_us) == expected
    # The refresh policies materialize the buckets that have closed; later trades fall in
    # the open bucket or later ones, answered in real time from trades, as plain candles.
    await run_jobs(timescale, "policy_refresh_continuous_aggregate")
    assert await candles(timescale) == expected_candles
    await trader.run(100)
    events = await all_events(engine.stub, engine.runtime.engine.seq)
    rest = project(events[batch.last_seq :], await load_catalog(plain), batch.last_seq + 1)
    assert rest.trades
    await store(plain, rest)
    await store(timescale, rest, candles=False)
    assert await candles(timescale) == await candles(plain)
    now_us = rest.last_ts_us + 1
    assert await answers(timescale, now_us) == await answers(plain, now_us)


async def chunks(conn: Conn) -> list[tuple[int, bool]]:
    """(range start, compressed) of each chunk of trades, oldest first."""
    rows = await conn.fetch(
        """SELECT range_start_integer, is_compressed FROM timescaledb_information.chunks
           WHERE hypertable_name = 'trades' ORDER BY 1"""
    )
    return [(r[0], r[1]) for r in rows]


async def unscheduled(conn: Conn) -> None:
    """Stops the scheduler's own runs of this database's policies, which the test runs
    itself (`run_jobs`), and waits out one already started: a run racing the test's reads
    can deadlock with them."""
    await conn.execute(
        """SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs
           WHERE proc_name LIKE 'policy%'"""
    )
    async with asyncio.timeout(60):
        while await conn.fetchval(  # noqa: ASYNC110 - polls the server's job table
            "SELECT count(*) FROM timescaledb_information.job_stats WHERE job_status = 'Running'"
        ):
            await asyncio.sleep(0.1)


async def run_jobs(conn: Conn, proc: str) -> None:
    jobs = await conn.fetch(
        "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = $1", proc
    )
    assert jobs
    for (job_id,) in jobs:
        await conn.execute(f"CALL run_job({job_id})")


async def pretend_now(conn: Conn, now_us: int) -> None:
    """The clock TimescaleDB's policies read for trades (set_integer_now_func)."""
    await conn.execute(
        f"CREATE OR REPLACE FUNCTION ledger_now_us() RETURNS bigint LANGUAGE sql STABLE "
        f"AS $$ SELECT {now_us}::bigint $$"
    )


async def test_policies_compress_and_drop_old_chunks_and_candles_stay(
    engine: RunningEngine, timescale: Conn
) -> None:
    batch = await history(engine, Trader(engine.stub, seed=47))
    await migrate(timescale)
    await unscheduled(timescale)
    await store(timescale, batch, candles=False)
    # One trade 15 days before the others: a chunk of its own (one chunk per day).
    old_ts = batch.trades[0][-1] - 15 * DAY_US
    old = (0, *batch.trades[0][1:-1], old_ts)
    await timescale.copy_records_to_table("trades", records=[old], columns=TRADE_COLUMNS)
    width = await timescale.fetchval(
        """SELECT integer_interval FROM timescaledb_information.dimensions
           WHERE hypertable_name = 'trades'"""
    )
    assert width == DAY_US
    now_us = batch.last_ts_us + 1
    # The refresh policies, run at the time of the trades, materialize their buckets.
    await pretend_now(timescale, now_us + 2 * DAY_US)
    await refresh(timescale)
    before_candles, before = await candles(timescale), await answers(timescale, now_us)
    assert [c for _, c in await chunks(timescale)] == [False, False]

    await timescale_policies(timescale, compress_after_days=7, retain_days=20)
    await unscheduled(timescale)
    # Ten days on: both chunks are past 7 days, compressed; the queries answer the same.
    await pretend_now(timescale, now_us + 10 * DAY_US)
    await run_jobs(timescale, "policy_compression")
    assert [c for _, c in await chunks(timescale)] == [True, True]
    assert await candles(timescale) == before_candles
    assert await answers(timescale, now_us) == before
    # Ten days on the old chunk is 25 days old, past 20: dropped, the newer one kept, and
    # the candles of the dropped trade stay (materialized before).
    await run_jobs(timescale, "policy_retention")
    remaining = await chunks(timescale)
    assert len(remaining) == 1
    assert remaining[0][0] > old_ts
    assert await timescale.fetchval("SELECT count(*) FROM trades WHERE trade_id = 0") == 0
    assert await candles(timescale) == before_candles


async def test_the_scheduler_runs_the_refresh_policies_and_they_succeed(
    engine: RunningEngine, timescale: Conn
) -> None:
    """TimescaleDB's own scheduler, not `run_job`: on this PostgreSQL every scheduled run
    failed (`cannot drop portal`) until scripts/timescaledb-patches/ fixed the job runner."""
    batch = await history(engine, Trader(engine.stub, seed=53))
    await migrate(timescale)
    await store(timescale, batch, candles=False)
    succeeded = """SELECT count(*) FROM timescaledb_information.job_stats s
                   JOIN timescaledb_information.jobs j USING (job_id)
                   WHERE j.proc_name = 'policy_refresh_continuous_aggregate'
                         AND s.total_successes > 0"""
    async with asyncio.timeout(240):  # the 1-minute aggregate's policy runs every 10 s
        while not await timescale.fetchval(succeeded):  # noqa: ASYNC110 - the scheduler runs it
            await asyncio.sleep(0.5)
    errors = await timescale.fetch(
        "SELECT job_id, proc_name, err_message FROM timescaledb_information.job_errors"
    )
    assert not errors, errors


async def test_installed_but_not_preloaded_gets_the_plain_track(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The extension's files are there, the server does not preload it: CREATE EXTENSION
    # would fail ("must be preloaded"), so the ledger takes the plain track and says why.
    server = LocalPostgres(
        tmp_path / "data", free_port(), timescale=True, settings={"shared_preload_libraries": ""}
    )
    async with _supervisor(server.spec("installed")):
        conn = await asyncpg.connect(server.url)
        try:
            assert await conn.fetchval(
                "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
            )
            with caplog.at_level(logging.INFO, logger="ledger_svc.migrate"):
                applied = await migrate(conn)
            assert applied
            assert all(name.startswith("core/") for name in applied)
            assert "installed but not preloaded" in caplog.text
        finally:
            await conn.close()
