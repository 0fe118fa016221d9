"""What every handler shares: the backends, the limits, and who is calling.

One `Backends` lives on the application (`BACKENDS` AppKey); handlers reach it with
`backends(request)`. It holds no trading state: markets are a short-lived cache of the
engine's list, everything else is asked of the engine or the ledger per request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from grpc_health.v1.health_pb2_grpc import HealthStub
from prometheus_client import Counter
from redis.asyncio import Redis

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from gateway_svc.auth import ApiKeys, Caller, Tokens, replayed, verify_signed
from gateway_svc.binance import auth as binance_auth
from gateway_svc.coalesce import Coalescer
from gateway_svc.errors import ApiError, bad_request, unauthorized
from gateway_svc.fences import admit, required_scope
from gateway_svc.limits import ConnectionLimiter, RateLimiter, Replayed, ReplayGuard, Rule
from gateway_svc.settings import GatewaySettings
from tradekit.backpack import INSTRUCTIONS
from tradekit.engine_client import EngineClient

if TYPE_CHECKING:
    from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceAsyncStub

RATE_LIMITED = Counter("gateway_rate_limited_total", "Requests refused with 429, by rule", ["rule"])

MARKETS_TTL_SECONDS = 10.0


@dataclass
class Markets:
    """The engine's assets, markets and networks, refreshed every few seconds or on a miss."""

    engine: EngineClient
    assets: list[cpb.Asset] = field(default_factory=list)
    by_symbol: dict[str, cpb.Market] = field(default_factory=dict)
    listed_networks: list[cpb.Network] = field(default_factory=list)  # assets on chains
    _expires: float = 0.0

    async def refresh(self) -> None:
        reply = await self.engine.stub.ListMarkets(epb.ListMarketsRequest())
        networks = await self.engine.stub.ListNetworks(epb.ListNetworksRequest())
        self.assets = list(reply.assets)
        self.by_symbol = {m.symbol: m for m in reply.markets}
        self.listed_networks = list(networks.networks)
        self._expires = time.monotonic() + MARKETS_TTL_SECONDS

    async def networks(self) -> list[cpb.Network]:
        if time.monotonic() > self._expires:
            await self.refresh()
        return self.listed_networks

    async def all(self) -> list[cpb.Market]:
        if time.monotonic() > self._expires:
            await self.refresh()
        return list(self.by_symbol.values())

    async def get(self, symbol: str) -> cpb.Market:
        """The market, or ApiError INVALID_MARKET."""
        if time.monotonic() > self._expires or symbol not in self.by_symbol:
            await self.refresh()
        market = self.by_symbol.get(symbol)
        if market is None:
            raise ApiError(400, "INVALID_MARKET", f"unknown market {symbol[:32]!r}")
        return market


@dataclass
class Backends:
    settings: GatewaySettings
    engine: EngineClient
    ledger: LedgerServiceAsyncStub
    engine_health: HealthStub
    ledger_health: HealthStub
    redis: Redis
    markets: Markets
    tokens: Tokens
    api_keys: ApiKeys
    rate: RateLimiter
    replays: ReplayGuard
    connections: ConnectionLimiter
    order_rule: Rule
    market_rule: Rule
    depth: Coalescer[tuple[str, int], bytes]  # (market, limit) -> GET /depth's body
    trades: Coalescer[tuple[str, int], bytes]  # (market, limit) -> GET /trades' body


BACKENDS = web.AppKey("backends", Backends)
JSON_BODY = web.RequestKey("json_body", object)
RATE_HEADERS = web.RequestKey("rate_headers", dict)


def backends(request: web.Request) -> Backends:
    return request.app[BACKENDS]


async def json_body(request: web.Request) -> Any:
    """The parsed JSON body ({} when empty), read once per request."""
    if JSON_BODY in request:
        return request[JSON_BODY]
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise bad_request("the body is not valid JSON") from None
    if not isinstance(body, dict | list):
        raise bad_request("the body must be a JSON object")
    request[JSON_BODY] = body
    return body


async def params(request: web.Request) -> dict[str, Any]:
    """Query parameters merged with a JSON object body (the body wins)."""
    merged: dict[str, Any] = dict(request.query)
    if request.method != "GET":
        body = await json_body(request)
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object")
        merged.update(body)
    return merged


async def caller(request: web.Request, rule: Rule | None = None, cost: int = 1) -> Caller:
    """The authenticated user: a bearer token, or a Backpack- or Binance-signed request.
    Else 401. A signed request's key must hold the route's scope and allow the client's
    address (403).

    With a `rule`, the request also counts (`cost`) against the user's limit of that rule,
    429 when over: for a signed request in the same Redis step as its replay check.
    """
    b = backends(request)
    who: Caller | None = None
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        who = Caller(b.tokens.verify(authorization[7:].strip()), "token")
        if rule is not None:
            await limit(request, rule, f"user:{who.user_id}", cost)
        return who
    if "X-API-Key" in request.headers:
        instruction = INSTRUCTIONS.get((request.method, request.path))
        if instruction is None:
            raise unauthorized("this endpoint does not take API-key signatures")
        signed: Any = dict(request.query) if request.method == "GET" else await json_body(request)
        # The replay check is made below, with the rate limit when there is one.
        who = await verify_signed(request.headers, instruction, signed, b.api_keys, None)
    elif binance_auth.HEADER in request.headers and request.path.startswith("/api/v3/"):
        who = await binance_auth.verify_request(request, b.api_keys)
    if who is None:
        raise unauthorized("sign the request (X-API-Key, X-Signature) or send a bearer token")
    assert who.key is not None
    admit(required_scope(request), who.key.permissions, who.key.ip_allowlist, request.remote or "")
    subject, ttl_ms = f"user:{who.user_id}", 2 * who.window_ms
    if rule is not None:
        await limit(request, rule, subject, cost, signature=who.signature, ttl_ms=ttl_ms)
    elif not await b.replays.first_use(subject, who.signature, ttl_ms):
        raise replayed()
    return who


async def limit(
    request: web.Request,
    rule: Rule,
    key: str,
    cost: int = 1,
    *,
    signature: str = "",
    ttl_ms: int = 0,
) -> None:
    """Count one action against `rule` for `key`; 429 with Retry-After when over. With a
    `signature`, 401 when it was used within `ttl_ms` (and nothing counted)."""
    try:
        decision = await backends(request).rate.hit(
            rule, key, cost, signature=signature, signature_ttl_ms=ttl_ms
        )
    except Replayed:
        raise replayed() from None
    request.setdefault(RATE_HEADERS, {}).update(decision.headers())
    if not decision.allowed:
        RATE_LIMITED.labels(rule.name).inc()
        raise ApiError(
            429,
            "TOO_MANY_REQUESTS",
            f"rate limit {rule.limit} per {rule.period_seconds:g}s exceeded",
            headers=decision.headers(),
        )
