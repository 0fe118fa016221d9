"""One-shot gRPC health probe (grpc.health.v1 Health.Check), the supervisor's readiness test."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Probes go straight to a local port: a proxy configured in the environment
# (http_proxy) must not capture them.
_CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0)]


# `timeout` is the RPC's own deadline, not a wrapper around the call.
async def check_health(address: str, service: str = "", timeout: float = 1.0) -> bool:  # noqa: ASYNC109
    """Return True if the server at `address` ("host:port") reports `service` as SERVING.

    Any failure (nothing listening, timeout, unknown service, NOT_SERVING) is False.
    A fresh channel per probe: a reused channel would sit in gRPC's reconnect backoff
    after the first refused connection and notice a newly started server late.
    """
    async with grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=service)
        try:
            reply = await stub.Check(request, timeout=timeout)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@dataclass(frozen=True)
class GrpcHealthProbe:
    """Readiness of a gRPC service: its health check answers SERVING."""

    address: str
    service: str = ""

    @property
    def target(self) -> str:
        return f"grpc {self.address}"

    async def check(self, timeout: float) -> bool:  # noqa: ASYNC109
        return await check_health(self.address, self.service, timeout)


@dataclass(frozen=True)
class HttpProbe:
    """Readiness of an HTTP service: GET `url` answers 200 (the gateway's /health)."""

    url: str

    @property
    def target(self) -> str:
        return f"http {self.url.removesuffix('/health')}"

    async def check(self, timeout: float) -> bool:  # noqa: ASYNC109
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=client_timeout, trust_env=False) as session,
                session.get(self.url) as response,
            ):
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False
