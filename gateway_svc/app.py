"""The gateway application: `create_app(settings)` wires backends, middlewares and routes.

Backends (the engine's batched stream, the ledger, Redis) are opened in a cleanup context
and closed on shutdown. Middlewares, outermost first: request id and metrics, then errors
(every failure becomes the JSON error body).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceStub
from gateway_svc import accounts, openapi, private, public, ws
from gateway_svc.auth import ApiKeys, Tokens
from gateway_svc.context import BACKENDS, RATE_HEADERS, Backends, Markets
from gateway_svc.engine_client import EngineClient
from gateway_svc.errors import Handler, error_middleware
from gateway_svc.limits import ConnectionLimiter, RateLimiter, ReplayGuard, Rule
from gateway_svc.respond import json_response
from gateway_svc.settings import GatewaySettings
from gateway_svc.web import ui_middleware
from servicekit.logs import request_id as request_id_var
from servicekit.request_ids import SendRequestId

REQUESTS = Counter("gateway_requests_total", "HTTP requests", ["route", "status"])
LATENCY = Histogram(
    "gateway_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
REDIS_POOL_SIZE = 256
GRPC_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Gives the request an id (logs, gRPC metadata, the response) and records metrics."""
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        for header, value in request.get(RATE_HEADERS, {}).items():
            response.headers.setdefault(header, value)
        return response
    finally:
        request_id_var.reset(token)
        REQUESTS.labels(name, str(status)).inc()
        LATENCY.labels(name).observe(time.perf_counter() - started)


async def health(request: web.Request) -> web.Response:
    """Ready when the engine and the ledger report SERVING and Redis answers."""
    b = request.app[BACKENDS]
    serving = health_pb2.HealthCheckResponse.SERVING
    checks: dict[str, str] = {}
    for name, stub in (("engine", b.engine_health), ("ledger", b.ledger_health)):
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
            checks[name] = "ok" if reply.status == serving else "not serving"
        except grpc.aio.AioRpcError as exc:
            checks[name] = f"down: {exc.code().name}"
    try:
        await b.redis.ping()
        checks["redis"] = "ok"
    except RedisError as exc:
        checks["redis"] = f"down: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ok" if ready else "unavailable", **checks}, 200 if ready else 503
    )


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(settings: GatewaySettings) -> web.Application:
    app = web.Application(
        middlewares=[ws.websocket_at_root, observe, error_middleware, ui_middleware(settings)],
        client_max_size=settings.max_body_bytes,
    )

    async def backends(app: web.Application) -> AsyncIterator[None]:
        # Unary calls carry the request id as metadata; order entry carries it per command.
        engine_channel = grpc.aio.insecure_channel(
            settings.engine_address, options=GRPC_OPTIONS, interceptors=[SendRequestId()]
        )
        ledger_channel = grpc.aio.insecure_channel(
            settings.ledger_address, options=GRPC_OPTIONS, interceptors=[SendRequestId()]
        )
        # One quick retry at most: while Redis is down, requests should fail fast with 503.
        # A blocking pool: under a burst, requests wait briefly for a connection instead of
        # failing once the pool's size is reached.
        pool = BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=REDIS_POOL_SIZE,
            timeout=2,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
        )
        redis = Redis(connection_pool=pool)
        engine = EngineClient(engine_channel, admin_token=settings.engine_admin_token)
        ledger = LedgerServiceStub(ledger_channel)
        app[BACKENDS] = Backends(
            settings=settings,
            engine=engine,
            ledger=ledger,
            engine_health=health_pb2_grpc.HealthStub(engine_channel),
            ledger_health=health_pb2_grpc.HealthStub(ledger_channel),
            redis=redis,
            markets=Markets(engine),
            tokens=Tokens(settings.token_secret, settings.token_ttl_seconds),
            api_keys=ApiKeys(ledger, settings.api_key_cache_seconds),
            rate=RateLimiter(redis),
            replays=ReplayGuard(redis),
            connections=ConnectionLimiter(redis),
            order_rule=Rule("orders", settings.order_rate, 1.0),
            market_rule=Rule("market", settings.market_rate, 1.0),
        )
        yield
        await engine.close()
        await engine_channel.close()
        await ledger_channel.close()
        await redis.aclose()

    app.cleanup_ctx.append(backends)
    app.cleanup_ctx.append(ws.streams_context(settings.stream_address))
    app.on_shutdown.append(ws.close_streams)
    app.router.add_routes(public.routes)
    app.router.add_routes(private.routes)
    app.router.add_routes(accounts.routes)
    app.router.add_routes(openapi.routes)
    app.router.add_routes(ws.routes)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    return app
