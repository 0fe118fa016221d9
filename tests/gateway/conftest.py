"""The whole back end for gateway tests: engine and ledger in-process on ephemeral ports,
real PostgreSQL and Redis, and the gateway app on a real TCP port."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway_svc.app import create_app
from gateway_svc.settings import GatewaySettings
from ledger_svc.server import LedgerRuntime, create_server
from tests.engine.conftest import RunningEngine, engine
from tests.ledger.test_service import ledger_settings

__all__ = ["engine"]

SECRET = "test-secret-test-secret-test-secret-0123"
SEAL_KEY = "test-seal-key-test-seal-key-test-seal-key"


def gateway_settings(
    engine_address: str, ledger_address: str, redis_url: str, **overrides: Any
) -> GatewaySettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "reuse_port": False,
        "engine_address": engine_address,
        "ledger_address": ledger_address,
        "redis_url": redis_url,
        "token_secret": SECRET,
        "token_ttl_seconds": 3600,
        "faucet_enabled": True,
        "faucet_cap": "100000",
        "order_rate": 1000,
        "market_rate": 1000,
        "ws_connections": 5,
        "max_body_bytes": 65536,
        "api_key_cache_seconds": 5.0,
        "verify_on_thread": False,
        "web_dir": "web/dist",
        "stream_address": "127.0.0.1:1",
        "ws_max_topics": 20,
        "ws_queue_frames": 1000,
        "ws_interval_ms": 100,
        "ws_send_buffer_bytes": 65536,
        "ws_heartbeat_seconds": 30.0,
        "ws_idle_seconds": 300.0,
        "ws_max_frame_bytes": 65536,
        "grace_seconds": 1.0,
        "log_level": "INFO",
        "api_secret_seal_key": SEAL_KEY,
        "binance_weight_1m": 1_000_000,
        "binance_orders_10s": 100_000,
    }
    values.update(overrides)
    return GatewaySettings(**values)


@dataclasses.dataclass
class Stack:
    client: TestClient[Any, Any]
    engine: RunningEngine
    ledger: LedgerRuntime
    url: str

    async def caught_up(self) -> None:
        """Wait until the ledger has stored every event the engine has made."""
        assert self.ledger.ingest is not None
        async with asyncio.timeout(30):
            await self.ledger.ingest.wait_for(self.engine.runtime.engine.seq)


@pytest.fixture
async def ledger_address(
    database_url: str, engine: RunningEngine
) -> AsyncIterator[tuple[str, LedgerRuntime]]:
    runtime = await LedgerRuntime.open(ledger_settings(database_url, engine.address))
    server, _, port = create_server(runtime, "127.0.0.1:0")
    await server.start()
    runtime.start()
    yield f"127.0.0.1:{port}", runtime
    await server.stop(0)
    await runtime.close()


@pytest.fixture
async def stack_factory(
    engine: RunningEngine, ledger_address: tuple[str, LedgerRuntime], redis_url: str
) -> AsyncIterator[Any]:
    clients: list[TestClient[Any, Any]] = []

    async def make(**overrides: Any) -> Stack:
        address, runtime = ledger_address
        app = create_app(gateway_settings(engine.address, address, redis_url, **overrides))
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return Stack(client, engine, runtime, str(client.make_url("")).rstrip("/"))

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def stack(stack_factory: Any) -> Stack:
    made: Stack = await stack_factory()
    return made
