"""The engine's and the ledger's Prometheus metrics say what really happened: events,
orders, trades, fsyncs, snapshots, ingest progress, and every gRPC call by status."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceStub
from launcher.ports import free_port
from ledger_svc.server import LedgerRuntime
from tests.engine.conftest import RunningEngine, deposit, engine
from tests.gateway.conftest import ledger_address
from tests.monitoring.scrape import Page, fetch, scrape

__all__ = ["engine", "ledger_address"]


def limit(user: int, side: cpb.Side.ValueType, price: str, qty: str) -> epb.PlaceOrderRequest:
    return epb.PlaceOrderRequest(
        user_id=user, market="TATA_INR", side=side, type=cpb.ORDER_TYPE_LIMIT,
        price=price, quantity=qty,
    )  # fmt: skip


async def trade_once(engine: RunningEngine) -> None:
    """bob rests a sell of 5 at 10; alice buys 3 of it."""
    await deposit(engine.stub, 1, "INR", "1000")
    await deposit(engine.stub, 2, "TATA", "10")
    for request in (limit(2, cpb.SIDE_SELL, "10", "5"), limit(1, cpb.SIDE_BUY, "10", "3")):
        assert (await engine.stub.PlaceOrder(request)).code == cpb.RESULT_CODE_OK


async def test_the_engine_counts_what_it_did(engine: RunningEngine) -> None:
    await trade_once(engine)
    await engine.stub.SetMarketStatus(
        epb.SetMarketStatusRequest(market="BTC_USDT", status=cpb.MARKET_STATUS_HALTED)
    )
    snapshot = await engine.stub.Snapshot(epb.SnapshotRequest())
    runtime = engine.runtime
    page = await scrape(runtime.registry)
    assert page.value("engine_last_seq") == runtime.engine.seq
    assert page.value("engine_last_snapshot_seq") == snapshot.seq == runtime.engine.seq
    assert page.value("engine_orders_accepted_total") == 2
    assert page.value("engine_trades_total") == 1
    assert page.value("engine_open_orders", market="TATA_INR") == 1
    assert page.value("engine_open_orders", market="BTC_USDT") == 0
    assert page.value("engine_market_halted", market="BTC_USDT") == 1
    assert page.value("engine_market_halted", market="TATA_INR") == 0
    assert page.value("engine_sequencer_queue_depth") == 0
    assert page.value("engine_sequencer_batches_total") == runtime.sequencer.batches
    assert page.value("engine_journal_failed") == 0
    # fsync is on: every batch that changed something was synced once (the listing too).
    fsyncs = page.value("engine_journal_fsync_seconds_count")
    assert fsyncs is not None
    assert 6 <= fsyncs <= runtime.sequencer.batches
    assert page.value("engine_snapshot_seconds_count") == 1
    assert page.value("engine_snapshot_bytes") == snapshot.size_bytes
    ok = {"grpc_method": "PlaceOrder", "grpc_code": "OK"}
    assert page.value("grpc_server_handled_total", **ok) == 2
    assert page.value("grpc_server_handling_seconds_count", grpc_method="PlaceOrder") == 2
    assert page.value("grpc_server_handled_total", grpc_method="Deposit", grpc_code="OK") == 2


async def test_streams_are_counted_when_they_end(engine: RunningEngine) -> None:
    async def one_batch() -> AsyncIterator[epb.CommandBatch]:
        yield epb.CommandBatch(
            commands=[epb.Command(request_id=1, place_order=limit(1, cpb.SIDE_BUY, "", ""))]
        )

    replies = [r async for r in engine.stub.Execute(one_batch())]
    assert len(replies) == 1
    subscription = engine.stub.Subscribe(epb.SubscribeRequest(from_seq=1))
    await subscription.read()
    subscription.cancel()
    registry = engine.runtime.registry
    execute = {"grpc_method": "Execute", "grpc_code": "OK"}
    cancelled = {"grpc_method": "Subscribe", "grpc_code": "CANCELLED"}
    async with asyncio.timeout(10):
        while registry.get_sample_value("grpc_server_handled_total", cancelled) != 1:  # noqa: ASYNC110 - the server learns of the cancel on its own time
            await asyncio.sleep(0.01)
    assert registry.get_sample_value("grpc_server_handled_total", execute) == 1


async def test_the_ledger_reports_its_ingest_and_its_calls(
    engine: RunningEngine, ledger_address: tuple[str, LedgerRuntime]
) -> None:
    address, ledger = ledger_address
    await trade_once(engine)
    assert ledger.ingest is not None
    async with asyncio.timeout(30):
        await ledger.ingest.wait_for(engine.runtime.engine.seq)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = LedgerServiceStub(channel)
        await stub.GetIngestStatus(lpb.GetIngestStatusRequest())
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetUser(lpb.GetUserRequest(user_id=12345))
    page = await scrape(ledger.registry)
    seq = engine.runtime.engine.seq
    assert page.value("ledger_ingest_last_seq") == seq
    assert page.value("ledger_ingest_events_total") == seq
    assert page.value("ledger_ingest_connected") == 1
    batches = page.value("ledger_ingest_batches_total")
    assert batches is not None
    assert 1 <= batches <= seq
    assert page.value("ledger_ingest_last_event_timestamp_seconds") == pytest.approx(
        engine.runtime.engine.ts / 1e6
    )
    ok = {"grpc_method": "GetIngestStatus", "grpc_code": "OK"}
    assert page.value("grpc_server_handled_total", **ok) == 1
    missing = {"grpc_method": "GetUser", "grpc_code": "NOT_FOUND"}
    assert page.value("grpc_server_handled_total", **missing) == 1


async def _serving_metrics(process: subprocess.Popen[str], port: int) -> Page:
    """The page of a service process, once its log says it serves."""
    assert process.stderr is not None
    for line in process.stderr:
        if " serving" in line:
            return await fetch(f"http://127.0.0.1:{port}/metrics")
    raise AssertionError(f"exited with {process.wait()} before serving")


def _start(module: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", module], env={**os.environ, **env}, stderr=subprocess.PIPE, text=True
    )


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)


async def test_engine_and_ledger_processes_serve_metrics(tmp_path: Path, database_url: str) -> None:
    engine_port, engine_metrics, ledger_metrics = free_port(), free_port(), free_port()
    engine = _start(
        "engine_svc",
        {"ENGINE_GRPC_PORT": str(engine_port), "ENGINE_HOST": "127.0.0.1",
         "ENGINE_DATA_DIR": str(tmp_path), "ENGINE_METRICS_PORT": str(engine_metrics)},
    )  # fmt: skip
    try:
        page = await _serving_metrics(engine, engine_metrics)
        # The markets file: 7 assets, 4 markets, 6 asset networks.
        assert page.value("engine_last_seq") == 17
        ledger = _start(
            "ledger_svc",
            {"LEDGER_GRPC_PORT": str(free_port()), "LEDGER_HOST": "127.0.0.1",
             "DATABASE_URL": database_url, "ENGINE_ADDRESS": f"127.0.0.1:{engine_port}",
             "LEDGER_METRICS_PORT": str(ledger_metrics), "LEDGER_ARGON2_MEMORY_KIB": "64"},
        )  # fmt: skip
        try:
            assert (
                "ledger_ingest_last_seq" in (await _serving_metrics(ledger, ledger_metrics)).names
            )
        finally:
            _stop(ledger)
        taken = _start(
            "engine_svc",
            {"ENGINE_GRPC_PORT": str(free_port()), "ENGINE_DATA_DIR": str(tmp_path / "other"),
             "ENGINE_METRICS_PORT": str(engine_metrics)},
        )  # fmt: skip
        _, err = taken.communicate(timeout=60)
        assert taken.returncode == 1
        assert f"engine_svc: cannot serve metrics on 0.0.0.0:{engine_metrics}" in err
        assert "(ENGINE_METRICS_PORT)" in err
    finally:
        _stop(engine)
