"""The gateway application: `create_app(settings)` wires backends, middlewares and routes.

Backends (the engine's batched stream, the ledger, Redis) are opened in a cleanup context
and closed on shutdown. Middlewares, outermost first: request id and metrics, then errors
(every failure becomes the JSON error body).
"""

from __future__ import annotations

import functools
import itertools
import os
import time
from collections.abc import AsyncIterator

import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from redis.exceptions import RedisError

from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceStub
from gateway_svc import accounts, capital, openapi, private, public, streams, ws
from gateway_svc.addresses import client_address_middleware
from gateway_svc.auth import ApiKeys, Tokens
from gateway_svc.binance import errors as binance_errors
from gateway_svc.binance import private as binance_private
from gateway_svc.binance import public as binance_public
from gateway_svc.binance import sockets as binance_sockets
from gateway_svc.binance import user_data as binance_user_data
from gateway_svc.binance import weights as binance_weights
from gateway_svc.coalesce import Coalescer
from gateway_svc.context import BACKENDS, RATE_HEADERS, Backends, Markets
from gateway_svc.cors import allow_origins
from gateway_svc.errors import Handler, error_middleware
from gateway_svc.headers import add_security_headers
from gateway_svc.limits import ConnectionLimiter, RateLimiter, ReplayGuard, Rule
from gateway_svc.redis_batch import RedisBatch, gateway_redis
from gateway_svc.respond import json_response
from gateway_svc.sealing import Sealer
from gateway_svc.settings import GatewaySettings
from gateway_svc.web import ui_middleware
from servicekit.logs import request_id as request_id_var
from servicekit.mtls import channel as mesh_channel
from servicekit.request_ids import SendRequestId
from tradekit.engine_client import EngineClient

REQUESTS = Counter("gateway_requests_total", "HTTP requests", ["route", "status"])
LATENCY = Histogram(
    "gateway_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
GRPC_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]

# Request ids (32 hex digits): this process's random prefix and a counter, unique without a
# system call per request (uuid4 reads os.urandom each time).
_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count(1)


class _RouteMetrics:
    """The labelled children of REQUESTS and LATENCY, looked up once per route and status."""

    def __init__(self) -> None:
        self._latency: dict[str, Histogram] = {}
        self._requests: dict[tuple[str, int], Counter] = {}

    def record(self, route: str, status: int, seconds: float) -> None:
        latency = self._latency.get(route)
        if latency is None:
            latency = self._latency[route] = LATENCY.labels(route)
        requests = self._requests.get((route, status))
        if requests is None:
            requests = self._requests[(route, status)] = REQUESTS.labels(route, str(status))
        latency.observe(seconds)
        requests.inc()


_route_metrics = _RouteMetrics()


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Gives the request an id (logs, gRPC metadata, the response) and records metrics."""
    request_id = request.headers.get("X-Request-Id") or f"{_ID_PREFIX}{next(_id_counter):016x}"
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        rate_headers = request.get(RATE_HEADERS)
        if rate_headers:
            for header, value in rate_headers.items():
                response.headers.setdefault(header, value)
        return response
    finally:
        request_id_var.reset(token)
        _route_metrics.record(name, status, time.perf_counter() - started)


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
        middlewares=[
            # With no trusted proxies the peer is the client: no layer is needed to say so.
            *(
                [client_address_middleware(settings.trusted_proxies)]
                if settings.trusted_proxies
                else []
            ),
            ws.websocket_at_root,
            observe,
            error_middleware({binance_errors.PREFIX: binance_errors.response}),
            binance_weights.charge_weight,
            ui_middleware(settings),
        ],
        client_max_size=settings.max_body_bytes,
    )

    async def backends(app: web.Application) -> AsyncIterator[None]:
        # Unary calls carry the request id as metadata; order entry carries it per command.
        engine_channel = mesh_channel(
            settings.engine_address, options=GRPC_OPTIONS, interceptors=[SendRequestId()]
        )
        ledger_channel = mesh_channel(
            settings.ledger_address, options=GRPC_OPTIONS, interceptors=[SendRequestId()]
        )
        redis = gateway_redis(settings.redis_url)
        batch = RedisBatch(redis)
        engine = EngineClient(engine_channel, admin_token=settings.engine_admin_token)
        ledger = LedgerServiceStub(ledger_channel)
        sealer = Sealer(settings.api_secret_seal_key) if settings.api_secret_seal_key else None
        api_keys = ApiKeys(
            ledger,
            settings.api_key_cache_seconds,
            verify_on_thread=settings.verify_on_thread,
            sealer=sealer,
        )
        app[BACKENDS] = Backends(
            settings=settings,
            engine=engine,
            ledger=ledger,
            engine_health=health_pb2_grpc.HealthStub(engine_channel),
            ledger_health=health_pb2_grpc.HealthStub(ledger_channel),
            redis=redis,
            markets=Markets(engine),
            tokens=Tokens(settings.token_secret, settings.token_ttl_seconds),
            api_keys=api_keys,
            rate=RateLimiter(batch),
            replays=ReplayGuard(batch),
            connections=ConnectionLimiter(redis),
            order_rule=Rule("orders", settings.order_rate, 1.0),
            market_rule=Rule("market", settings.market_rate, 1.0),
            depth=Coalescer(functools.partial(public.depth_body, engine)),
            trades=Coalescer(functools.partial(public.trades_body, ledger)),
        )
        yield
        await engine.close()
        await engine_channel.close()
        await ledger_channel.close()
        await redis.aclose()
        api_keys.close()

    app.cleanup_ctx.append(backends)
    app.cleanup_ctx.append(
        streams.streams_context(settings.stream_address, settings.ws_interval_ms)
    )
    app.on_shutdown.append(streams.close_streams)
    app.on_startup.append(binance_sockets.read_event_names)  # after the contexts above
    app.router.add_routes(public.routes)
    app.router.add_routes(private.routes)
    app.router.add_routes(capital.routes)
    app.router.add_routes(accounts.routes)
    app.router.add_routes(openapi.routes)
    app.router.add_routes(ws.routes)
    app.router.add_routes(binance_public.routes)
    app.router.add_routes(binance_private.routes)
    app.router.add_routes(binance_user_data.routes)
    app.router.add_routes(binance_sockets.routes)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    allow_origins(app, settings.cors_origins)
    app.on_response_prepare.append(add_security_headers)
    return app
