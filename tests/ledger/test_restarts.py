"""Exactly-once ingest across real crashes: kill -9 the ledger, PostgreSQL and the engine,
each in turn, while orders stream in; afterwards the ledger holds every event once.

Every process is real and supervised as `make run` does it (restarted after a crash). The
check at the end compares the stored rows with a projection of the engine's whole event
stream, and the balances of record with the engine's through Reconcile.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import grpc

from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1 import engine_pb2_grpc as epb_grpc
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.ledger.v1 import ledger_pb2_grpc as lpb_grpc
from launcher.ports import free_port
from launcher.postgres import NO_DISK_WAIT, LocalPostgres
from launcher.supervisor import ServiceSpec, Supervisor
from ledger_svc.projection import Catalog, project
from tests.ledger.events import all_events
from tests.ledger.trading import Trader

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub
    from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceAsyncStub


def specs(tmp: Path) -> tuple[list[ServiceSpec], str, str, str]:
    # No fsync, but every commit reaches the OS before it is confirmed: that survives killed
    # processes and risks only a machine crash, which this test does not simulate.
    postgres = LocalPostgres(tmp / "postgres", free_port(), settings=NO_DISK_WAIT)
    engine_address = f"127.0.0.1:{free_port()}"
    ledger_address = f"127.0.0.1:{free_port()}"
    return (
        [
            postgres.spec(),
            ServiceSpec(
                name="engine",
                argv=[sys.executable, "-m", "engine_svc"],
                env={
                    "ENGINE_HOST": "127.0.0.1",
                    "ENGINE_GRPC_PORT": engine_address.rsplit(":", 1)[1],
                    "ENGINE_DATA_DIR": str(tmp / "engine"),
                },
                health_address=engine_address,
            ),
            ServiceSpec(
                name="ledger",
                argv=[sys.executable, "-m", "ledger_svc"],
                env={
                    "LEDGER_HOST": "127.0.0.1",
                    "LEDGER_GRPC_PORT": ledger_address.rsplit(":", 1)[1],
                    "DATABASE_URL": postgres.url,
                    "ENGINE_ADDRESS": engine_address,
                    "LEDGER_MAX_BATCH_EVENTS": "200",
                },
                health_address=ledger_address,
            ),
        ],
        postgres.url,
        engine_address,
        ledger_address,
    )


async def keep_trading(trader: Trader, stop: asyncio.Event) -> None:
    """Trade until told to stop, riding out the engine's restarts."""
    while not stop.is_set():
        try:
            await trader.step()
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.05)


async def wait_stored(ledger: LedgerServiceAsyncStub, seq: int, timeout: float = 60) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(grpc.aio.AioRpcError):
                status = await ledger.GetIngestStatus(lpb.GetIngestStatusRequest())
                if status.last_seq >= seq:
                    return
            await asyncio.sleep(0.05)


async def engine_seq(engine: EngineServiceAsyncStub) -> int:
    return (await engine.GetStateHash(epb.GetStateHashRequest(), wait_for_ready=True)).seq


async def test_ingest_survives_each_process_being_killed(tmp_path: Path) -> None:
    service_specs, database_url, engine_address, ledger_address = specs(tmp_path)
    async with (
        Supervisor(service_specs, grace=5.0, prefix_output=False) as sup,
        grpc.aio.insecure_channel(engine_address) as engine_channel,
        grpc.aio.insecure_channel(ledger_address) as ledger_channel,
    ):
        engine: EngineServiceAsyncStub = epb_grpc.EngineServiceStub(engine_channel)
        ledger: LedgerServiceAsyncStub = lpb_grpc.LedgerServiceStub(ledger_channel)
        trader = Trader(engine, seed=31)
        await trader.fund()
        stop = asyncio.Event()
        trading = asyncio.create_task(keep_trading(trader, stop))
        try:
            for victim in ("ledger", "postgres", "engine"):
                # Let some events flow, kill mid-stream, and wait until ingest moves again.
                await asyncio.sleep(1.0)
                await sup.kill(victim)
                await sup.wait_healthy(victim, timeout=60)
                await wait_stored(ledger, await engine_seq(engine) + 1)
                assert sup.restarts(victim) == 1
        finally:
            stop.set()
            await trading
        final = await engine_seq(engine)
        await wait_stored(ledger, final)
        assert trader.accepted > 200

        reconciled = await ledger.Reconcile(lpb.ReconcileRequest())
        assert reconciled.seq == final
        assert list(reconciled.differences) == []

        expected = project(await all_events(engine, final), Catalog(), 1)
        conn = await asyncpg.connect(database_url)
        try:
            assert await conn.fetchval("SELECT last_seq FROM ingest_cursor") == final
            counts = await conn.fetchrow(
                """SELECT (SELECT count(*) FROM trades), (SELECT count(*) FROM orders),
                          (SELECT count(*) FROM order_events),
                          (SELECT count(*) FROM ledger_transfers)"""
            )
            assert counts is not None
            assert tuple(counts) == (
                len(expected.trades),
                len(expected.new_orders),
                len(expected.order_events),
                len(expected.transfers),
            )
        finally:
            await conn.close()
