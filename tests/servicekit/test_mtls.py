"""Mutual TLS on every gRPC service: without a certificate from the deployment CA, no call."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio import Redis

from bench.certs import Authority, Pem
from engine_svc.server import EngineRuntime
from engine_svc.server import create_server as engine_server
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1.engine_pb2_grpc import EngineServiceStub
from ledger_svc.server import LedgerRuntime
from ledger_svc.server import create_server as ledger_server
from servicekit import mtls
from servicekit.settings import SettingsError
from stream_svc.hub import StreamHub
from stream_svc.server import create_server as stream_server
from tests.engine.conftest import engine_settings
from tests.ledger.test_service import ledger_settings


@pytest.fixture
def mesh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Authority, Pem]]:
    """This process configured for mutual TLS, as a deployment sets it (environment)."""
    ca = Authority(tmp_path / "pki")
    service = ca.issue("service")
    for name, path in zip(mtls.ENV_FILES, (ca.ca, service.cert, service.key), strict=True):
        monkeypatch.setenv(name, str(path))
    mtls.mesh.cache_clear()
    yield ca, service
    mtls.mesh.cache_clear()


async def _health(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=10
    )
    return int(reply.status)


async def _refused(channel: grpc.aio.Channel) -> None:
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await _health(channel)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE


async def assert_mutual_tls(port: int, ca: Authority, own: Pem, tmp_path: Path) -> None:
    address = f"127.0.0.1:{port}"
    ca_pem = ca.ca.read_bytes()
    await _refused(grpc.aio.insecure_channel(address))  # plaintext
    await _refused(grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(ca_pem)))
    stranger = Authority(tmp_path / "other", "other CA").issue("intruder")
    foreign = grpc.ssl_channel_credentials(
        ca_pem, stranger.key.read_bytes(), stranger.cert.read_bytes()
    )
    await _refused(grpc.aio.secure_channel(address, foreign))  # a certificate of another CA
    async with mtls.channel(address) as channel:  # the service's own, from the environment
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
    other = ca.issue("gateway")
    good = grpc.ssl_channel_credentials(ca_pem, other.key.read_bytes(), other.cert.read_bytes())
    async with grpc.aio.secure_channel(address, good) as channel:
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING


async def test_the_engine_requires_a_client_certificate(
    mesh: tuple[Authority, Pem], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = EngineRuntime(engine_settings(tmp_path / "engine"))
    await runtime.start()
    server, health, port = engine_server(runtime, "127.0.0.1:0")
    await server.start()
    try:
        await assert_mutual_tls(port, *mesh, tmp_path)
        # The probe port answers health alone, in plaintext; the engine is not on it.
        probe_port = _free_port()
        monkeypatch.setenv(mtls.ENV_HEALTH_PORT, str(probe_port))
        probes = await mtls.health_only_server(health, "127.0.0.1")
        assert probes is not None
        probe = f"127.0.0.1:{probe_port}"
        async with grpc.aio.insecure_channel(probe) as channel:
            assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await EngineServiceStub(channel).ListMarkets(epb.ListMarketsRequest(), timeout=10)
            assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED
        await probes.stop(0)
    finally:
        await server.stop(0)
        await runtime.stop()


async def test_the_ledger_requires_a_client_certificate(
    mesh: tuple[Authority, Pem], database_url: str, tmp_path: Path
) -> None:
    runtime = await LedgerRuntime.open(ledger_settings(database_url, "127.0.0.1:1"))
    server, _, port = ledger_server(runtime, "127.0.0.1:0")
    await server.start()
    try:
        await assert_mutual_tls(port, *mesh, tmp_path)
    finally:
        await server.stop(0)
        await runtime.close()


async def test_the_stream_service_requires_a_client_certificate(
    mesh: tuple[Authority, Pem], redis_url: str, tmp_path: Path
) -> None:
    redis: Any = Redis.from_url(redis_url)
    async with mtls.channel("127.0.0.1:1") as engine:
        hub = StreamHub(EngineServiceStub(engine), redis, 100)
        server, _, port = stream_server(hub, "127.0.0.1:0")
        await server.start()
        try:
            await assert_mutual_tls(port, *mesh, tmp_path)
        finally:
            await server.stop(0)
            await redis.aclose()


def test_half_a_configuration_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRPC_TLS_CA", str(tmp_path / "ca.pem"))
    with pytest.raises(SettingsError, match="all of"):
        mtls.MeshTls.from_env()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
