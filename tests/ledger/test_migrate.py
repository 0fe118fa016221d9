"""Migrations: applied once, in order, atomically; the TimescaleDB track only where the
server preloads the extension."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from ledger_svc.migrate import MIGRATIONS_DIR, load, migrate, timescale_preloaded
from ledger_svc.projection import TRANSFER_COLUMNS, Catalog, project
from tests.conftest import BOTH_BACKENDS
from tests.engine.conftest import RunningEngine
from tests.ledger.events import MOVEMENT_COLUMNS, all_events, entries, movements
from tests.ledger.trading import Trader

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub


@BOTH_BACKENDS
async def test_migrations_apply_once(database_url: str, backend: str) -> None:
    tracks = ["core", *(["timescale"] if backend == "timescale" else [])]
    expected = [
        (track, m.version, m.name)
        for track in tracks
        for m in load(MIGRATIONS_DIR / ("timescale" if track == "timescale" else ""), track)
    ]
    conn = await asyncpg.connect(database_url)
    try:
        assert await timescale_preloaded(conn) == (backend == "timescale")
        applied = await migrate(conn)
        assert applied == [f"{track}/{name}" for track, _, name in expected]
        assert await migrate(conn) == []
        versions = await conn.fetch("SELECT track, version, name FROM schema_version ORDER BY 1, 2")
        assert [tuple(v) for v in versions] == expected
        assert await conn.fetchval("SELECT last_seq FROM ingest_cursor") == 0
        # Plain: a candles table that ingest keeps. Timescale: a view over the continuous
        # aggregates, and trades a hypertable.
        kind = await conn.fetchval("SELECT relkind::text FROM pg_class WHERE relname = 'candles'")
        assert kind == ("v" if backend == "timescale" else "r")
        hypertables = (
            await conn.fetch("SELECT hypertable_name FROM timescaledb_information.hypertables")
            if backend == "timescale"
            else []
        )
        assert [r[0] for r in hypertables] == (["trades"] if backend == "timescale" else [])
    finally:
        await conn.close()


@BOTH_BACKENDS
async def test_concurrent_starts_apply_each_migration_once(database_url: str, backend: str) -> None:
    count = len(load(MIGRATIONS_DIR, "core"))
    if backend == "timescale":
        count += len(load(MIGRATIONS_DIR / "timescale", "timescale"))
    conns = [await asyncpg.connect(database_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, count]
    finally:
        for c in conns:
            await c.close()


async def test_a_failing_migration_applies_nothing(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE good (x int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE broken (x nosuchtype);")
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.UndefinedObjectError):
            await migrate(conn, directory=tmp_path, use_timescale=False)
        assert await conn.fetchval("SELECT to_regclass('good')") is None
        assert await conn.fetchval("SELECT to_regclass('schema_version')") is None
    finally:
        await conn.close()


def test_migration_files_must_be_numbered_without_gaps(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("")
    (tmp_path / "0003_c.sql").write_text("")
    with pytest.raises(ValueError, match="expected version 2"):
        load(tmp_path, "core")
    (tmp_path / "2_bad name.sql").write_text("")
    with pytest.raises(ValueError, match="not named"):
        load(tmp_path, "core")


async def trades_with_one_fee(stub: EngineServiceAsyncStub) -> None:
    """At 1.00 INR a fill's fee is a fraction of a paisa. Fees are charged cumulatively per
    order, rounded up, so a resting order's second such fill pays none: a trade with the
    taker's fee alone, once with the buyer as taker and once with the seller."""
    for maker, maker_side, taker, taker_side in (
        (1, cpb.SIDE_SELL, 2, cpb.SIDE_BUY), (2, cpb.SIDE_BUY, 1, cpb.SIDE_SELL),
    ):  # fmt: skip
        for user, side, quantity in ((maker, maker_side, "2"), *[(taker, taker_side, "1")] * 2):
            reply = await stub.PlaceOrder(
                epb.PlaceOrderRequest(
                    user_id=user, market="TATA_INR", side=side, type=cpb.ORDER_TYPE_LIMIT,
                    price="1.00", quantity=quantity, time_in_force=cpb.TIME_IN_FORCE_GTC,
                )
            )  # fmt: skip
            assert reply.code == 0, reply.message


async def test_stored_entries_become_the_transfers_ingest_makes(
    database_url: str, engine: RunningEngine, tmp_path: Path
) -> None:
    # A ledger written before migration 0005 holds two mirrored entries per movement (the
    # debit, then its credit); 0005 pairs them into one row per movement, 0006 folds each
    # fee's row onto its trade's quote leg: the very rows, with the very ids, that ingest
    # makes of the same events now, and the entries listed stay the same.
    trader = Trader(engine.stub, seed=29)
    await trader.fund()
    await trades_with_one_fee(engine.stub)
    await trader.run(200)
    batch = project(await all_events(engine.stub, engine.runtime.engine.seq), Catalog(), 1)
    transfers_made = batch.transfers
    fees = [(bool(t[7]), bool(t[8])) for t in transfers_made if t[7] or t[8]]
    assert {(True, True), (True, False), (False, True)} <= set(fees)  # both, either alone
    rows = [entry[1:] for t in transfers_made for entry in entries(t)]  # no entry_id column
    migrations = sorted(MIGRATIONS_DIR.glob("*.sql"))
    for migration in migrations[:4]:
        shutil.copy(migration, tmp_path)
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, directory=tmp_path, use_timescale=False)
        columns = ("seq", "user_id", "asset", "bucket", "kind", "amount", "order_id",
                   "trade_id", "ts_us")  # fmt: skip
        await conn.copy_records_to_table("ledger_entries", records=rows, columns=columns)

        shutil.copy(migrations[4], tmp_path)
        assert await migrate(conn, directory=tmp_path, use_timescale=False) == [
            "core/0005_ledger_transfers"
        ]
        stored = await conn.fetch(
            f"SELECT {', '.join(MOVEMENT_COLUMNS)} FROM ledger_transfers ORDER BY transfer_id"
        )
        assert [tuple(r) for r in stored] == [m for t in transfers_made for m in movements(t)]

        shutil.copy(migrations[5], tmp_path)
        assert await migrate(conn, directory=tmp_path, use_timescale=False) == [
            "core/0006_fees_on_trade_rows"
        ]
        stored = await conn.fetch(
            f"SELECT {', '.join(TRANSFER_COLUMNS)} FROM ledger_transfers ORDER BY transfer_id"
        )
        assert [tuple(r) for r in stored] == transfers_made
        # The view lists the same entries as before, in the same order.
        listed = await conn.fetch(
            f"SELECT {', '.join(columns)} FROM ledger_entries ORDER BY entry_id"
        )
        assert [tuple(r) for r in listed] == rows
    finally:
        await conn.close()
