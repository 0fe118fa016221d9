"""Prometheus metrics shared by the gRPC services: the /metrics endpoint, and per-RPC counts
by status code and latencies (an interceptor).

Each service keeps its own registry (tests run several services in one process). Metric
names follow the common gRPC convention (`grpc_server_handled_total{grpc_method, grpc_code}`,
`grpc_server_handling_seconds`), so the usual dashboards and alerts fit them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from servicekit.handlers import Ctx, Handler, wrapped

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


@contextlib.asynccontextmanager
async def metrics_endpoint(
    service: str, registry: CollectorRegistry, host: str, port: int, variable: str
) -> AsyncIterator[None]:
    """Serves /metrics while the block runs (port 0: none). A port already taken stops the
    process with a message naming `variable`, the setting to change."""
    if not port:
        yield
        return
    try:
        runner = await serve_metrics(registry, host, port)
    except OSError as exc:
        sys.exit(f"{service}_svc: cannot serve metrics on {host}:{port} ({variable}): {exc}")
    try:
        yield
    finally:
        await runner.cleanup()


async def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> web.AppRunner:
    """GET /metrics on host:port until the returned runner is cleaned up."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


class RpcMetrics(grpc.aio.ServerInterceptor):
    """Counts every call by method and status code; times unary calls (a stream's length
    says nothing about the server's speed)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.handled = Counter(
            "grpc_server_handled",
            "RPCs completed, by method and status code",
            ["grpc_method", "grpc_code"],
            registry=registry,
        )
        self.seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time to answer a unary RPC",
            ["grpc_method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method.rsplit("/", 1)[-1]
        return wrapped(
            handler,
            functools.partial(self._unary, method),
            functools.partial(self._streaming, method),
        )

    def _unary(self, method: str, behavior: Any) -> Callable[[Any, Ctx], Awaitable[Any]]:
        async def observed(request: Any, context: Ctx) -> Any:
            started = time.perf_counter()
            code = "UNKNOWN"
            try:
                reply = await behavior(request, context)
                code = _code(context, "OK")
                return reply
            except asyncio.CancelledError:
                code = "CANCELLED"
                raise
            except BaseException:
                code = _code(context, "UNKNOWN")  # context.abort() set the code first
                raise
            finally:
                self.handled.labels(method, code).inc()
                self.seconds.labels(method).observe(time.perf_counter() - started)

        return observed

    def _streaming(self, method: str, behavior: Any) -> Callable[[Any, Ctx], AsyncIterator[Any]]:
        async def observed(request: Any, context: Ctx) -> AsyncIterator[Any]:
            code = "UNKNOWN"
            try:
                async for reply in behavior(request, context):
                    yield reply
                code = _code(context, "OK")
            except (asyncio.CancelledError, GeneratorExit):
                code = "CANCELLED"
                raise
            except BaseException:
                code = _code(context, "UNKNOWN")
                raise
            finally:
                self.handled.labels(method, code).inc()

        return observed


def _code(context: Ctx, default: str) -> str:
    """The status the handler set (by abort or set_code), by name; `default` if none."""
    code: Any = context.code()
    if code is None:
        return default
    if isinstance(code, grpc.StatusCode):
        return code.name
    return next((c.name for c in grpc.StatusCode if c.value[0] == code), default)
