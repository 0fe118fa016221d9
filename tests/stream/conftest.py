"""The live market-data path in-process: engine and ledger on ephemeral ports, the
publisher following the engine into a real Redis, stream_svc serving gRPC from it, and a
gateway on a real TCP port using that stream_svc."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from redis.asyncio import Redis

from exchange.engine.v1.engine_pb2_grpc import EngineServiceStub
from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceStub
from ledger_svc.server import LedgerRuntime
from stream_svc.hub import StreamHub
from stream_svc.publisher import Publisher, run
from stream_svc.server import create_server, running_hub
from stream_svc.settings import PublisherSettings, StreamSettings
from tests.engine.conftest import RunningEngine, engine
from tests.gateway.conftest import Stack, ledger_address, stack_factory

__all__ = ["engine", "ledger_address", "stack_factory"]


def publisher_settings(
    engine_address: str, ledger_address: str, redis_url: str
) -> PublisherSettings:
    return PublisherSettings(
        host="127.0.0.1", port=0, engine_address=engine_address,
        ledger_address=ledger_address, redis_url=redis_url, ledger_wait_seconds=10.0,
        recent_trades=50, grace_seconds=1.0, log_level="INFO",
    )  # fmt: skip


def stream_settings(engine_address: str, redis_url: str, **overrides: Any) -> StreamSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1", "port": 0, "engine_address": engine_address,
        "redis_url": redis_url, "queue_items": 10_000, "grace_seconds": 1.0,
        "log_level": "INFO",
    }  # fmt: skip
    values.update(overrides)
    return StreamSettings(**values)


@contextlib.asynccontextmanager
async def publishing(
    engine_address: str, ledger_address: str, redis_url: str
) -> AsyncIterator[Publisher]:
    settings = publisher_settings(engine_address, ledger_address, redis_url)
    redis = Redis.from_url(redis_url)
    publisher = Publisher(settings, redis)
    async with (
        grpc.aio.insecure_channel(engine_address) as engine_channel,
        grpc.aio.insecure_channel(ledger_address) as ledger_channel,
    ):
        task = asyncio.create_task(
            run(publisher, EngineServiceStub(engine_channel), LedgerServiceStub(ledger_channel))
        )
        try:
            yield publisher
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await redis.aclose()


@contextlib.asynccontextmanager
async def streaming(
    settings: StreamSettings, port: int = 0
) -> AsyncIterator[tuple[StreamHub, int]]:
    async with running_hub(settings) as hub:
        server, _, bound = create_server(hub, f"127.0.0.1:{port}")
        await server.start()
        await hub.connected.wait()
        try:
            yield hub, bound
        finally:
            await server.stop(0)


@dataclasses.dataclass
class Live:
    stack: Stack
    publisher: Publisher
    hub: StreamHub
    stream_port: int
    redis_url: str

    @property
    def ws_url(self) -> str:
        return self.stack.url.replace("http://", "ws://") + "/ws"

    async def published(self) -> None:
        """Wait until the publisher has sent every event the engine has made to Redis."""
        target = self.stack.engine.runtime.engine.seq
        async with asyncio.timeout(20):
            while self.publisher.sent_seq < target:  # noqa: ASYNC110 - polls another task's progress
                await asyncio.sleep(0.02)


@pytest.fixture
async def live(
    engine: RunningEngine,
    ledger_address: tuple[str, LedgerRuntime],
    redis_url: str,
    stack_factory: Callable[..., Awaitable[Stack]],
) -> AsyncIterator[Live]:
    address, _ = ledger_address
    async with (
        publishing(engine.address, address, redis_url) as publisher,
        streaming(stream_settings(engine.address, redis_url)) as (hub, port),
    ):
        stack = await stack_factory(stream_address=f"127.0.0.1:{port}")
        yield Live(stack, publisher, hub, port, redis_url)
