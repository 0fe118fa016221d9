"""The life of the maker's and the flow's processes.

Start: the gRPC health service answers NOT_SERVING while the worker waits for the engine,
checks its markets and funds itself; then SERVING while it runs. SIGTERM: NOT_SERVING, the
worker stops between two of its steps, cancels its orders when configured to, and the
process exits 0. A worker that fails (a bug, or an engine that does not match the
configuration) ends the process with status 1 and says why.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from typing import Protocol

import grpc
from grpc_health.v1 import health_pb2
from prometheus_client import CollectorRegistry

from mm_svc.engine import ENGINE_ERRORS, StartupError, open_channel
from mm_svc.settings import MmSettings
from servicekit.grpc_server import add_health_and_reflection, serve_until_signalled, set_serving
from servicekit.metrics import serve_metrics
from tradekit.engine_client import EngineClient

log = logging.getLogger(__name__)


class Worker(Protocol):
    async def prepare(self) -> None: ...

    async def run(self) -> None: ...

    async def shutdown(self) -> None: ...


WorkerFactory = Callable[[EngineClient, CollectorRegistry], Worker]


async def serve(settings: MmSettings, name: str, make_worker: WorkerFactory) -> None:
    registry = CollectorRegistry()
    server = grpc.aio.server()
    health = add_health_and_reflection(server, [])
    # The health servicer starts out SERVING; not ready until the worker is prepared.
    await health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        port = server.add_insecure_port(f"{settings.host}:{settings.health_port}")
    except RuntimeError:
        sys.exit(
            f"mm_svc: cannot listen on {settings.host}:{settings.health_port} (MM_HEALTH_PORT)"
        )
    await server.start()
    metrics = None
    if settings.metrics_port:
        try:
            metrics = await serve_metrics(registry, settings.host, settings.metrics_port)
        except OSError as exc:
            sys.exit(f"mm_svc: cannot serve metrics on port {settings.metrics_port}: {exc}")
    channel = open_channel(settings.engine_address)
    client = EngineClient(channel, admin_token=settings.engine_admin_token)
    worker = make_worker(client, registry)
    log.info(
        "%s starting", name,
        extra={"engine": settings.engine_address, "health_port": port,
               "metrics_port": settings.metrics_port},
    )  # fmt: skip
    prepared = asyncio.Event()
    failure: list[BaseException] = []
    stopping: list[asyncio.Task[None]] = []

    async def work() -> None:
        await worker.prepare()
        prepared.set()
        await set_serving(health, [])
        await worker.run()

    def finished(done: asyncio.Task[None]) -> None:
        error = None if done.cancelled() else done.exception()
        if error is not None:
            failure.append(error)
            # Stopping the server ends serve_until_signalled below, as SIGTERM would.
            stopping.append(asyncio.create_task(server.stop(0)))

    task = asyncio.create_task(work(), name=name)
    task.add_done_callback(finished)

    async def stop() -> None:
        task.cancel()
        await asyncio.wait({task})
        if prepared.is_set() and not failure:
            try:
                await worker.shutdown()
            except ENGINE_ERRORS as exc:
                log.warning("could not clean up at the engine: %s", exc)
        await client.close()
        await channel.close()
        if metrics is not None:
            await metrics.cleanup()

    await serve_until_signalled(server, health, grace=settings.grace_seconds, on_stop=stop)
    if failure:
        error = failure[0]
        if isinstance(error, StartupError):
            sys.exit(f"mm_svc: {error}")
        log.error("%s failed", name, exc_info=error)
        sys.exit(f"mm_svc: {name} failed: {error!r}")
