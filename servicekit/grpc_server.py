"""The life of a gRPC service: health and reflection, then graceful shutdown on SIGTERM.

Shutdown order, as Kubernetes expects it: health turns NOT_SERVING first so
traffic drains away, the server stops taking new calls and lets running ones
finish within the grace period, then the service's own cleanup runs.
"""

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from servicekit.mtls import health_only_server

log = logging.getLogger(__name__)


def add_health_and_reflection(
    server: grpc.aio.Server, service_names: Sequence[str]
) -> HealthServicer:
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME],
        server,
    )  # fmt: skip
    return health


async def set_serving(health: HealthServicer, service_names: Sequence[str]) -> None:
    for name in ("", *service_names):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)


async def serve_until_signalled(
    server: grpc.aio.Server,
    health: HealthServicer,
    *,
    grace: float,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Runs the started server until SIGTERM/SIGINT, then shuts down gracefully. With
    GRPC_HEALTH_PORT, its health also answers there in plaintext (probes, under mTLS)."""
    probes = await health_only_server(health, "0.0.0.0")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server_done = asyncio.ensure_future(server.wait_for_termination())
    stop_wait = asyncio.ensure_future(stop.wait())
    await asyncio.wait({server_done, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down", extra={"grace_s": grace})
    await health.enter_graceful_shutdown()
    await server.stop(grace)
    if probes is not None:
        await probes.stop(0)
    if on_stop is not None:
        await on_stop()
    stop_wait.cancel()
    server_done.cancel()
    log.info("stopped")
