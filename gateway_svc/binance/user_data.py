"""Binance's user-data stream: listen keys, and the caller's own events in Binance's form.

`POST /api/v3/userDataStream` gives the caller a listen key (the one it already has, kept
for another 60 minutes, as Binance does), `PUT` keeps it 60 minutes more, `DELETE` ends it.
Keys live in Redis with that expiry, so every replica knows them. As on Binance, these
calls need only `X-MBX-APIKEY` (a key holding the READ scope, from an allowed address) or a
bearer token; a stream opened with a listen key (`/ws/<listenKey>`) is told
`listenKeyExpired` and closed once the key is gone.

Events: `executionReport` from each order update, `outboundAccountPosition` from each
balance update, and before it, as Binance sends them, a `balanceUpdate` per capital move
the update carries (a deposit credited, a withdrawal requested or declined: `d` is the
change of the free balance).
"""

from __future__ import annotations

import secrets
import time
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from exchange.common.v1 import common_pb2 as cpb
from exchange.stream.v1 import stream_pb2 as spb
from gateway_svc.binance.auth import HEADER
from gateway_svc.binance.client_ids import known
from gateway_svc.binance.dialect import (
    SIDE_NAMES,
    STATUS_NAMES,
    STP_NAMES,
    TIF_NAMES,
    number,
    order_type,
    read_params,
)
from gateway_svc.context import backends, limit
from gateway_svc.errors import ApiError, unauthorized
from gateway_svc.fences import Scope, admit
from gateway_svc.respond import json_response

routes = web.RouteTableDef()

TTL_SECONDS = 3600
CHECK_SECONDS = 5.0  # how often an open stream looks whether its key still exists
_KEY = "binance:listenKey:"  # + key -> user id
_OF_USER = "binance:listenKeyOf:"  # + user id -> key


def _unavailable() -> ApiError:
    return ApiError(503, "SERVICE_UNAVAILABLE", "listen keys are unavailable; try again shortly")


def _unknown() -> ApiError:
    return ApiError(400, "INVALID_LISTEN_KEY", "This listenKey does not exist.")


async def user_of(redis: Redis, key: str) -> int | None:
    """The user a listen key belongs to; None for a key that does not exist (any more)."""
    if not (key.isascii() and key.isalnum() and len(key) <= 64):
        return None
    found = await redis.get(_KEY + key)
    return int(found) if found is not None else None


async def _create(redis: Redis, user_id: int) -> str:
    existing = await redis.get(f"{_OF_USER}{user_id}")
    if existing is not None:
        key = existing.decode() if isinstance(existing, bytes) else str(existing)
        if await redis.expire(_KEY + key, TTL_SECONDS):
            await redis.expire(f"{_OF_USER}{user_id}", TTL_SECONDS)
            return key
    key = secrets.token_hex(32)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(_KEY + key, str(user_id), ex=TTL_SECONDS)
        pipe.set(f"{_OF_USER}{user_id}", key, ex=TTL_SECONDS)
        await pipe.execute()
    return key


async def _owner(request: web.Request) -> tuple[int, dict[str, str]]:
    """The caller (API key alone, or a bearer token) and the parameters."""
    b = backends(request)
    await limit(request, b.market_rule, f"ip:{request.remote}")
    p, _, _ = await read_params(request)
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        return b.tokens.verify(authorization[7:].strip()), p
    api_key = request.headers.get(HEADER, "")
    key = await b.api_keys.lookup(api_key) if api_key else None
    if key is None or key.revoked_at_us:
        raise unauthorized("Invalid API-key, IP, or permissions for action.")
    admit(Scope.READ, key.permissions, key.ip_allowlist, request.remote or "")
    return key.user_id, p


async def _own_key(request: web.Request) -> tuple[Redis, str, int]:
    user_id, p = await _owner(request)
    key = p.get("listenKey", "")
    if not key:
        raise ApiError(
            400,
            "MANDATORY_PARAM_MISSING",
            "Mandatory parameter 'listenKey' was not sent, was empty/null, or malformed.",
        )
    redis = backends(request).redis
    if await user_of(redis, key) != user_id:
        raise _unknown()
    return redis, key, user_id


@routes.post("/api/v3/userDataStream")
async def create_listen_key(request: web.Request) -> web.Response:
    user_id, _ = await _owner(request)
    try:
        key = await _create(backends(request).redis, user_id)
    except RedisError:
        raise _unavailable() from None
    return json_response({"listenKey": key})


@routes.put("/api/v3/userDataStream")
async def keep_listen_key(request: web.Request) -> web.Response:
    try:
        redis, key, user_id = await _own_key(request)
        await redis.expire(_KEY + key, TTL_SECONDS)
        await redis.expire(f"{_OF_USER}{user_id}", TTL_SECONDS)
    except RedisError:
        raise _unavailable() from None
    return json_response({})


@routes.delete("/api/v3/userDataStream")
async def close_listen_key(request: web.Request) -> web.Response:
    try:
        redis, key, user_id = await _own_key(request)
        await redis.delete(_KEY + key)
        if await redis.get(f"{_OF_USER}{user_id}") == key.encode():
            await redis.delete(f"{_OF_USER}{user_id}")
    except RedisError:
        raise _unavailable() from None
    return json_response({})


def expired(key: str) -> bytes:
    return orjson.dumps({"e": "listenKeyExpired", "E": int(time.time() * 1000), "listenKey": key})


def event(item: spb.MarketData, symbols: dict[str, str]) -> bytes:
    """A private message as Binance's user-data event; b"" for one Binance does not send
    (an order's close after its last fill, which already said FILLED)."""
    kind = item.WhichOneof("body")
    if kind == "balance_update":
        b = item.balance_update
        at = b.ts_us // 1000
        return orjson.dumps(
            {
                "e": "outboundAccountPosition",
                "E": at,
                "u": at,
                "B": [{"a": b.asset, "f": number(b.available), "l": number(b.locked)}],
            }
        )
    if kind != "order_update":
        return b""
    u = item.order_update
    if u.kind == spb.ORDER_UPDATE_KIND_CLOSED and u.order.status == cpb.ORDER_STATUS_FILLED:
        return b""
    return orjson.dumps(_execution_report(u, symbols))


def capital_events(item: spb.MarketData) -> list[bytes]:
    """Binance's `balanceUpdate` of each capital move a balance update carries."""
    if item.WhichOneof("body") != "balance_update":
        return []
    b = item.balance_update
    return [
        orjson.dumps(
            {
                "e": "balanceUpdate",
                "E": d.ts_us // 1000,
                "a": b.asset,
                "d": d.delta,
                "T": d.ts_us // 1000,
            }
        )
        for d in b.deltas
    ]


def _execution_type(u: spb.OrderUpdate) -> str:
    if u.kind == spb.ORDER_UPDATE_KIND_FILL:
        return "TRADE"
    if u.kind == spb.ORDER_UPDATE_KIND_TRIGGER_FAILED:
        return "REJECTED"
    if u.kind == spb.ORDER_UPDATE_KIND_CLOSED:
        return "EXPIRED" if u.order.status == cpb.ORDER_STATUS_EXPIRED else "CANCELED"
    return "NEW"


def _execution_report(u: spb.OrderUpdate, symbols: dict[str, str]) -> dict[str, Any]:
    o = u.order
    fill = u.kind == spb.ORDER_UPDATE_KIND_FILL
    at = u.ts_us // 1000
    last_quote = "0"
    if fill:
        last_quote = format(Decimal(u.fill_price) * Decimal(u.fill_quantity), "f")
    status = STATUS_NAMES.get(o.status, "NEW")
    if u.kind == spb.ORDER_UPDATE_KIND_TRIGGER_FAILED:
        status = "REJECTED"
    return {
        "e": "executionReport", "E": at, "s": symbols.get(o.market, o.market.replace("_", "")),
        "c": known(o.client_order_id),
        "S": SIDE_NAMES.get(o.side, "BUY"), "o": order_type(o),
        "f": TIF_NAMES.get(o.time_in_force, "GTC"),
        "q": number(o.quantity), "p": number(o.price), "P": number(o.trigger_price),
        "F": "0", "g": -1, "C": "", "x": _execution_type(u), "X": status,
        "r": o.trigger_failure or "NONE", "i": o.order_id,
        "l": number(u.fill_quantity) if fill else "0", "z": number(o.executed_quantity),
        "L": number(u.fill_price) if fill else "0", "n": number(u.fee) if fill else "0",
        "N": o.market.partition("_")[2] or None if fill else None, "T": at,
        "t": u.trade_id if fill else -1, "I": 0,
        "w": o.status in (cpb.ORDER_STATUS_NEW, cpb.ORDER_STATUS_PARTIALLY_FILLED),
        "m": u.is_maker if fill else False, "M": False,
        "O": (o.created_at_us or u.ts_us) // 1000, "Z": number(o.executed_quote_quantity),
        "Y": last_quote, "Q": number(o.quote_quantity), "W": (o.created_at_us or u.ts_us) // 1000,
        "V": STP_NAMES.get(o.self_trade_prevention, "EXPIRE_TAKER"),
    }  # fmt: skip
