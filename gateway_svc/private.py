"""Private endpoints: orders, balances, history and the demo faucet, for the caller only.

Every handler acts for the authenticated user (`caller`); a `userId` in the request must
be that user. Orders and cancels go to the engine through the shared batched stream; each order
request (a batch of up to 100 orders included) counts once against the per-user limit, as
soon as its caller is known (with a signature's replay check: one Redis step), so a request
refused afterwards (403, 400) has counted too. Each route says which scope an API key
needs for it (`requires`): reads need `read`, orders and the faucet `trade`.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from aiohttp import web

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from gateway_svc.auth import Caller
from gateway_svc.context import backends, caller, json_body, limit, params
from gateway_svc.dialect import (
    STATUS_BY_NAME,
    check_user,
    decimal_text,
    fill_json,
    market_of,
    order_json,
    place_request,
    uint,
)
from gateway_svc.errors import ApiError, bad_request, engine_error, forbidden
from gateway_svc.fences import Scope, requires
from gateway_svc.respond import json_response
from servicekit.logs import request_id as request_id_var

routes = web.RouteTableDef()

MAX_BATCH_ORDERS = 100
MAX_MS = (2**63 - 1) // 1000  # times in ms that are still int64 microseconds


async def _acting(
    request: web.Request, *, order_action: bool = False
) -> tuple[Caller, dict[str, Any]]:
    """The caller and the request's parameters; an order action counts against the limit."""
    who = await caller(request, backends(request).order_rule if order_action else None)
    p = await params(request)
    check_user(p, who.user_id)
    return who, p


@routes.get("/api/v1/capital")
@requires(Scope.READ)
async def capital(request: web.Request) -> web.Response:
    who, _ = await _acting(request)
    reply = await backends(request).engine.stub.GetBalances(
        epb.GetBalancesRequest(user_id=who.user_id)
    )
    return json_response(
        {
            b.asset: {"available": b.available, "locked": b.locked, "staked": "0"}
            for b in reply.balances
        }
    )


@routes.post("/api/v1/order")
@requires(Scope.TRADE)
async def place_order(request: web.Request) -> web.Response:
    who, p = await _acting(request, order_action=True)
    reply = await backends(request).engine.place(place_request(p, who.user_id))
    if reply.code:
        raise engine_error(reply.code, reply.message, **reply.details)
    return json_response(order_json(reply.order, list(reply.fills)))


@routes.post("/api/v1/orders")
@requires(Scope.TRADE)
async def place_orders(request: web.Request) -> web.Response:
    # One request, one action, as Backpack counts them.
    who = await caller(request, backends(request).order_rule)
    body = await json_body(request)
    if not isinstance(body, list) or not body:
        raise bad_request("the body must be a non-empty JSON list of orders")
    if len(body) > MAX_BATCH_ORDERS:
        raise bad_request(f"at most {MAX_BATCH_ORDERS} orders per batch")
    orders = [place_request(item, who.user_id) for item in body]
    replies = await backends(request).engine.place_many(orders)
    results: list[dict[str, Any]] = []
    for reply in replies:
        if reply.code:
            results.append(engine_error(reply.code, reply.message, **reply.details).body())
        else:
            results.append(order_json(reply.order, list(reply.fills)))
    return json_response(results)


def _order_ref(p: dict[str, Any], user_id: int) -> dict[str, Any]:
    """The fields that name one of the caller's orders, as GetOrder and CancelOrder take them."""
    order_id, client_id = uint(p, "orderId"), uint(p, "clientId")
    if not (order_id or client_id):
        raise bad_request("orderId or clientId is required", field="orderId")
    return {
        "user_id": user_id,
        "order_id": order_id,
        "client_order_id": client_id,
        "market": market_of(p, required=False),
    }


@routes.get("/api/v1/order")
@requires(Scope.READ)
async def get_order(request: web.Request) -> web.Response:
    who, p = await _acting(request)
    reply = await backends(request).engine.stub.GetOrder(
        epb.GetOrderRequest(**_order_ref(p, who.user_id))
    )
    if reply.code:
        raise engine_error(reply.code, reply.message)
    return json_response(order_json(reply.order))


@routes.delete("/api/v1/order")
@requires(Scope.TRADE)
async def cancel_order(request: web.Request) -> web.Response:
    who, p = await _acting(request, order_action=True)
    ref = _order_ref(p, who.user_id)
    reply = await backends(request).engine.cancel(epb.CancelOrderRequest(**ref))
    if reply.code:
        raise engine_error(reply.code, reply.message)
    return json_response(order_json(reply.order))


@routes.get("/api/v1/orders")
@routes.get("/api/v1/openOrders")
@routes.get("/api/v1/order/open")
@requires(Scope.READ)
async def open_orders(request: web.Request) -> web.Response:
    who, p = await _acting(request)
    reply = await backends(request).engine.stub.GetOpenOrders(
        epb.GetOpenOrdersRequest(user_id=who.user_id, market=market_of(p, required=False))
    )
    return json_response([order_json(o) for o in reply.orders])


@routes.delete("/api/v1/orders")
@requires(Scope.TRADE)
async def cancel_all(request: web.Request) -> web.Response:
    who, p = await _acting(request, order_action=True)
    reply = await backends(request).engine.cancel_all(
        epb.CancelAllOrdersRequest(user_id=who.user_id, market=market_of(p, required=False))
    )
    if reply.code:
        raise engine_error(reply.code, reply.message)
    return json_response([order_json(o) for o in reply.orders])


@routes.get("/wapi/v1/history/orders")
@requires(Scope.READ)
async def order_history(request: web.Request) -> web.Response:
    who, p = await _acting(request)
    ledger = backends(request).ledger
    order_id = uint(p, "orderId", maximum=2**63 - 2)  # id + 1 is the ledger's int64 cursor
    status_name = str(p.get("status", "")).lower()
    if status_name and status_name not in STATUS_BY_NAME:
        raise bad_request("status is not an order status", field="status")
    reply = await ledger.GetOrderHistory(
        lpb.GetOrderHistoryRequest(
            user_id=who.user_id,
            market=market_of(p, required=False),
            status=STATUS_BY_NAME.get(status_name, cpb.ORDER_STATUS_UNSPECIFIED),
            # One order by id: the newest order below id + 1 is that order, if it exists.
            limit=1 if order_id else uint(p, "limit", maximum=1000) or 100,
            cursor=order_id + 1 if order_id else 0,
        )
    )
    orders = [o for o in reply.orders if not order_id or o.order_id == order_id]
    return json_response([order_json(o) for o in orders])


@routes.get("/wapi/v1/history/fills")
@requires(Scope.READ)
async def fill_history(request: web.Request) -> web.Response:
    who, p = await _acting(request)
    reply = await backends(request).ledger.GetFills(
        lpb.GetFillsRequest(
            user_id=who.user_id,
            market=market_of(p, required=False),
            from_us=uint(p, "from", maximum=MAX_MS) * 1000,
            to_us=uint(p, "to", maximum=MAX_MS) * 1000,
            limit=uint(p, "limit", maximum=1000) or 100,
            order_id=uint(p, "orderId"),
        )
    )
    return json_response([fill_json(f) for f in reply.fills])


@routes.post("/api/v1/onramp")
@requires(Scope.TRADE)
async def onramp(request: web.Request) -> web.Response:
    """The demo faucet (the spec's ON_RAMP): credits the caller, up to a cap per asset."""
    b = backends(request)
    if not b.settings.faucet_enabled:
        raise forbidden("the faucet is disabled on this exchange")
    who, p = await _acting(request)
    asset = p.get("asset")
    amount = decimal_text(p, "amount")
    if not isinstance(asset, str) or not asset:
        raise bad_request("asset is required", field="asset")
    await b.markets.all()
    decimals = {a.symbol: a.decimals for a in b.markets.assets}.get(asset)
    if decimals is None:
        raise ApiError(400, "INVALID_ASSET", f"unknown asset {asset[:16]!r}")
    units = _units(amount, decimals)
    cap = _units(b.settings.faucet_cap, decimals)
    over_cap = ApiError(
        400, "FAUCET_LIMIT", f"the faucet gives at most {b.settings.faucet_cap} {asset}"
    )
    if units > cap:  # also keeps the count below within Redis' 64-bit integers
        raise over_cap
    await limit(request, b.order_rule, f"user:{who.user_id}")
    # The cap is counted in integer units in Redis, shared by every replica, once per
    # request: a retry with the same X-Request-Id (marked) is not counted again.
    key = f"faucet:{who.user_id}:{asset}"
    reference = _onramp_reference(who.user_id, request_id_var.get() or "")
    marker = f"faucet:request:{reference}"
    counted = bool(await b.redis.set(marker, 1, nx=True, ex=FAUCET_RETRY_SECONDS))
    if counted and await b.redis.incrby(key, units) > cap:
        await b.redis.decrby(key, units)
        await b.redis.delete(marker)
        raise over_cap
    reply = await b.engine.deposit(
        epb.DepositRequest(
            user_id=who.user_id, asset=asset, amount=amount, onramp_reference=reference
        )
    )
    if counted and (reply.code or not reply.seq):  # refused, or credited before the mark
        await b.redis.decrby(key, units)
    if reply.code:
        if counted:
            await b.redis.delete(marker)  # a retry may count again
        raise engine_error(reply.code, reply.message)
    balance = reply.balance
    return json_response({"asset": asset, "available": balance.available, "locked": balance.locked})


FAUCET_RETRY_SECONDS = 86_400  # how long a request's mark keeps its retries uncounted


def _onramp_reference(user_id: int, request_id: str) -> str:
    """The onramp deposit's transaction hash: one per user and X-Request-Id, so a request
    retried with its id is credited once (the gateway makes a unique id when none is sent)."""
    return hashlib.sha256(f"{user_id}:{request_id}".encode()).hexdigest()


def _units(amount: str, decimals: int) -> int:
    """A positive decimal string in the asset's smallest unit; 400 when it is not exact."""
    try:
        value = Decimal(amount)
        units = value.scaleb(decimals)
    except ArithmeticError:  # InvalidOperation, or Overflow of an exponent like 1e999999999
        raise bad_request("amount must be a decimal string", field="amount") from None
    if not value.is_finite() or value <= 0 or units != units.to_integral_value():
        raise bad_request(
            f"amount must be positive with at most {decimals} decimals", field="amount"
        )
    if units.adjusted() > 36:  # int() of 1e999999 takes seconds; no faucet gives so much
        raise bad_request("amount is too large", field="amount")
    return int(units)
