"""Fixtures: a real engine gRPC server on an ephemeral port, with its data in tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from engine_svc.config import DEFAULT_MARKETS_FILE
from engine_svc.server import EngineRuntime, create_server
from engine_svc.settings import EngineSettings
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1 import engine_pb2_grpc as epb_grpc


def engine_settings(data_dir: Path, **overrides: object) -> EngineSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "data_dir": data_dir,
        "markets_file": DEFAULT_MARKETS_FILE,
        "fsync": True,
        "snapshot_every_events": 1_000_000,
        "snapshot_every_seconds": 300.0,
        "grace_seconds": 1.0,
        "log_level": "INFO",
    }
    values.update(overrides)
    return EngineSettings(**values)  # type: ignore[arg-type]


@dataclass
class RunningEngine:
    stub: epb_grpc.EngineServiceAsyncStub
    runtime: EngineRuntime
    address: str


@asynccontextmanager
async def running_engine(data_dir: Path, **overrides: object) -> AsyncIterator[RunningEngine]:
    """An engine and its gRPC server in this process, on an ephemeral port, with its data in
    `data_dir` (`overrides` as for `engine_settings`); stopped on the way out."""
    runtime = EngineRuntime(engine_settings(data_dir, **overrides))
    await runtime.start()
    server, _, port = create_server(runtime, "127.0.0.1:0")
    await server.start()
    address = f"127.0.0.1:{port}"
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            yield RunningEngine(epb_grpc.EngineServiceStub(channel), runtime, address)
    finally:
        await server.stop(0)
        await runtime.stop()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[RunningEngine]:
    async with running_engine(tmp_path) as running:
        yield running


async def deposit(
    stub: epb_grpc.EngineServiceAsyncStub, user: int, asset: str, amount: str
) -> None:
    reply = await stub.Deposit(epb.DepositRequest(user_id=user, asset=asset, amount=amount))
    assert reply.code == 0, reply.message
