"""Binance's signed endpoints: orders, cancels, open and all orders, trades, the account.

The same engine commands and ledger queries as gateway_svc/private.py, for the caller only
(`context.caller`, which checks a Binance signature like any other credential). A
`newClientOrderId` is the engine's client order id (client_ids.py), so an order can be found
and cancelled by it, and every answer shows it as it was sent.

STOP_LOSS(_LIMIT) and TAKE_PROFIT(_LIMIT) are the engine's trigger orders at `stopPrice`.
The engine fixes a trigger's direction from the last price when it accepts it; a stop or
take-profit that lies on the wrong side of the price (Binance: "would trigger immediately")
is cancelled at once and refused with -2010.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from aiohttp import web

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from gateway_svc.auth import Caller
from gateway_svc.binance import client_ids, weights
from gateway_svc.binance.dialect import (
    CLIENT_ID,
    SIDES,
    STPS,
    TIFS,
    binance_symbol,
    choice,
    integer,
    invalid,
    market_of,
    missing,
    ms,
    order_json,
    read_params,
    stop_above,
    time_span,
)
from gateway_svc.context import Backends, backends, caller
from gateway_svc.errors import ApiError, engine_error
from gateway_svc.fences import Scope, requires
from gateway_svc.respond import json_response
from tradekit.binance import client_order_id

routes = web.RouteTableDef()

TYPES = {
    "LIMIT": (cpb.ORDER_TYPE_LIMIT, False),
    "LIMIT_MAKER": (cpb.ORDER_TYPE_LIMIT, True),
    "MARKET": (cpb.ORDER_TYPE_MARKET, False),
}
# Trigger types -> (the order they become, whether a stop-loss rather than a take-profit).
TRIGGER_TYPES = {
    "STOP_LOSS": (cpb.ORDER_TYPE_MARKET, True),
    "STOP_LOSS_LIMIT": (cpb.ORDER_TYPE_LIMIT, True),
    "TAKE_PROFIT": (cpb.ORDER_TYPE_MARKET, False),
    "TAKE_PROFIT_LIMIT": (cpb.ORDER_TYPE_LIMIT, False),
}
RESPONSE_TYPES = ("ACK", "RESULT", "FULL")
MAX_LIMIT = 1000


async def _acting(
    request: web.Request, *, order_action: bool = False
) -> tuple[Caller, dict[str, str], Backends]:
    b = backends(request)
    who = await caller(request, b.order_rule if order_action else None)
    p, _, _ = await read_params(request)
    return who, p, b


_DECIMAL = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?").fullmatch


def _decimal(p: dict[str, str], field: str) -> str:
    value = p.get(field, "")
    if value and not _DECIMAL(value):
        raise invalid(field, "a decimal such as 1.25")
    return value


def _place_request(p: dict[str, str], user_id: int, market: cpb.Market) -> epb.PlaceOrderRequest:
    side = choice(p, "side", SIDES, "INVALID_SIDE")
    if "type" not in p:
        raise missing("type")
    if p["type"] in TRIGGER_TYPES:
        kind, maker_only = TRIGGER_TYPES[p["type"]][0], False
    else:
        kind, maker_only = choice(p, "type", TYPES, "INVALID_ORDER_TYPE")
    if p.get("trailingDelta"):
        raise invalid("trailingDelta", "trailing stops are not supported")
    stop = _decimal(p, "stopPrice")
    if p["type"] in TRIGGER_TYPES and not stop:
        raise missing("stopPrice")
    if stop and p["type"] not in TRIGGER_TYPES:
        raise ApiError(
            400, "INVALID_CLIENT_REQUEST", "Parameter 'stopPrice' sent when not required."
        )
    client = p.get("newClientOrderId", "")
    if client and not CLIENT_ID(client):
        raise invalid("newClientOrderId", "1 to 36 of A-Z a-z 0-9 . : / _ -")
    price = _decimal(p, "price")
    quantity, quote = _decimal(p, "quantity"), _decimal(p, "quoteOrderQty")
    tif = cpb.TIME_IN_FORCE_UNSPECIFIED
    if p.get("timeInForce"):
        tif = choice(p, "timeInForce", TIFS, "INVALID_TIF")
    if kind == cpb.ORDER_TYPE_LIMIT:
        if not price:
            raise missing("price")
        if not quantity:
            raise missing("quantity")
    elif price:
        raise ApiError(400, "INVALID_CLIENT_REQUEST", "Parameter 'price' sent when not required.")
    elif bool(quantity) == bool(quote):
        raise ApiError(
            400,
            "MANDATORY_PARAM_MISSING",
            "Param 'quantity' or 'quoteOrderQty' must be sent, but not both.",
        )
    stp = cpb.SELF_TRADE_PREVENTION_UNSPECIFIED
    if p.get("selfTradePreventionMode"):
        stp = choice(p, "selfTradePreventionMode", STPS, "INVALID_CLIENT_REQUEST")
    return epb.PlaceOrderRequest(
        user_id=user_id,
        market=market.symbol,
        side=side,
        type=kind,
        price=price,
        quantity=quantity,
        quote_quantity=quote,
        time_in_force=tif,
        post_only=maker_only,
        client_order_id=client_order_id(client),
        self_trade_prevention=stp,
        trigger_price=stop,
    )


def _fill_json(f: cpb.Fill, market: cpb.Market, order_id: int) -> dict[str, Any]:
    """One of a new order's fills: it took, or (triggers it fired) it was the maker."""
    fee = f.maker_fee if f.maker_order_id == order_id else f.taker_fee
    return {
        "price": f.price,
        "qty": f.quantity,
        "commission": fee or "0",
        "commissionAsset": market.quote,
        "tradeId": f.trade_id,
    }


@routes.post("/api/v3/order")
@requires(Scope.TRADE)
async def place_order(request: web.Request) -> web.Response:
    who, p, b = await _acting(request, order_action=True)
    market = await market_of(b.markets, p)
    order = _place_request(p, who.user_id, market)
    answer = p.get("newOrderRespType") or "FULL"
    if answer not in RESPONSE_TYPES:
        raise invalid("newOrderRespType", "ACK, RESULT or FULL")
    await weights.count_order(request, who.user_id)
    await client_ids.remember(b.ledger, who.user_id, p.get("newClientOrderId", ""))
    reply = await b.engine.place(order)
    if reply.code:
        raise engine_error(reply.code, reply.message, **reply.details)
    if p["type"] in TRIGGER_TYPES:
        await _refuse_wrong_side(b, reply.order, TRIGGER_TYPES[p["type"]][1])
    symbol = binance_symbol(market)
    out = order_json(reply.order, symbol, p.get("newClientOrderId", ""))
    if answer == "ACK":
        keys = ("symbol", "orderId", "orderListId", "clientOrderId", "transactTime")
        return json_response({k: out[k] for k in keys})
    if answer == "FULL":
        out["fills"] = [_fill_json(f, market, reply.order.order_id) for f in reply.fills]
    return json_response(out)


async def _refuse_wrong_side(b: Backends, placed: cpb.Order, stop_loss: bool) -> None:
    """-2010 for a stop that the engine took as a take-profit, or the other way round (it
    lay on the wrong side of the last price), once it is cancelled; a trigger that fired
    meanwhile stands, as Binance's would have."""
    if stop_above(placed.side, stop_loss) == placed.trigger_above:
        return
    reply = await b.engine.cancel(
        epb.CancelOrderRequest(
            user_id=placed.user_id, market=placed.market, order_id=placed.order_id
        )
    )
    if not reply.code:
        raise ApiError(
            400,
            "INVALID_ORDER",
            "Stop price would trigger immediately.",
            {"reason": "TRIGGER_WOULD_FIRE"},
        )


@routes.post("/api/v3/order/test")
@requires(Scope.TRADE)
async def test_order(request: web.Request) -> web.Response:
    """Checks the order as /order does, short of the engine's own checks; places nothing."""
    who, p, b = await _acting(request)
    _place_request(p, who.user_id, await market_of(b.markets, p))
    return json_response({})


def _ref(p: dict[str, str], user_id: int, market: cpb.Market) -> dict[str, Any]:
    order_id = integer(p, "orderId")
    client = p.get("origClientOrderId", "")
    if not (order_id or client):
        raise ApiError(
            400,
            "MANDATORY_PARAM_MISSING",
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        )
    client_id = client_order_id(client)
    if client and not client_id:
        raise ApiError(
            404, "RESOURCE_NOT_FOUND", "Order does not exist.", {"reason": "ORDER_NOT_FOUND"}
        )
    return {
        "user_id": user_id,
        "order_id": order_id,
        "client_order_id": client_id,
        "market": market.symbol,
    }


async def _history(b: Backends, user_id: int, market: str, order_id: int) -> cpb.Order | None:
    reply = await b.ledger.GetOrderHistory(
        lpb.GetOrderHistoryRequest(user_id=user_id, market=market, limit=1, cursor=order_id + 1)
    )
    return next((o for o in reply.orders if o.order_id == order_id), None)


@routes.get("/api/v3/order")
@requires(Scope.READ)
async def get_order(request: web.Request) -> web.Response:
    """An open order from the engine; a closed one, by id, from the ledger's history."""
    who, p, b = await _acting(request)
    market = await market_of(b.markets, p)
    ref = _ref(p, who.user_id, market)
    reply = await b.engine.stub.GetOrder(epb.GetOrderRequest(**ref))
    found: cpb.Order | None = reply.order if not reply.code else None
    if found is None and ref["order_id"] and ref["order_id"] < 2**63 - 1:
        found = await _history(b, who.user_id, market.symbol, ref["order_id"])
    if found is None:
        raise engine_error(reply.code or cpb.RESULT_CODE_ORDER_NOT_FOUND, "Order does not exist.")
    await client_ids.learn(b.ledger, who.user_id, [found.client_order_id])
    return json_response(order_json(found, binance_symbol(market)))


def _cancelled(o: cpb.Order, symbol: str, client: str = "") -> dict[str, Any]:
    out = order_json(o, symbol)
    out["origClientOrderId"] = client or out["clientOrderId"]
    return out


@routes.delete("/api/v3/order")
@requires(Scope.TRADE)
async def cancel_order(request: web.Request) -> web.Response:
    who, p, b = await _acting(request, order_action=True)
    market = await market_of(b.markets, p)
    ref = _ref(p, who.user_id, market)
    reply = await b.engine.cancel(epb.CancelOrderRequest(**ref))
    if reply.code == cpb.RESULT_CODE_ORDER_NOT_FOUND:
        raise ApiError(400, "CANCEL_REJECTED", "Unknown order sent.")
    if reply.code:
        raise engine_error(reply.code, reply.message)
    await client_ids.learn(b.ledger, who.user_id, [reply.order.client_order_id])
    symbol = binance_symbol(market)
    return json_response(_cancelled(reply.order, symbol, p.get("origClientOrderId", "")))


@routes.get("/api/v3/openOrders")
@requires(Scope.READ)
async def open_orders(request: web.Request) -> web.Response:
    who, p, b = await _acting(request)
    market = await market_of(b.markets, p) if p.get("symbol") else None
    reply = await b.engine.stub.GetOpenOrders(
        epb.GetOpenOrdersRequest(user_id=who.user_id, market=market.symbol if market else "")
    )
    symbols = {m.symbol: binance_symbol(m) for m in await b.markets.all()}
    await client_ids.learn(b.ledger, who.user_id, (o.client_order_id for o in reply.orders))
    return json_response([order_json(o, symbols.get(o.market, "")) for o in reply.orders])


@routes.delete("/api/v3/openOrders")
@requires(Scope.TRADE)
async def cancel_open_orders(request: web.Request) -> web.Response:
    who, p, b = await _acting(request, order_action=True)
    market = await market_of(b.markets, p)
    reply = await b.engine.cancel_all(
        epb.CancelAllOrdersRequest(user_id=who.user_id, market=market.symbol)
    )
    if reply.code:
        raise engine_error(reply.code, reply.message)
    await client_ids.learn(b.ledger, who.user_id, (o.client_order_id for o in reply.orders))
    symbol = binance_symbol(market)
    return json_response([_cancelled(o, symbol) for o in reply.orders])


def _window(p: dict[str, str]) -> tuple[int, int, bool]:
    """`startTime`/`endTime` as the ledger's from_us/to_us (end inclusive, in ms), and
    whether the page runs forward (from a time or an id on; else the newest `limit`); the
    two at most 24 hours apart, as on allOrders and myTrades."""
    start, end = time_span(p, 24)
    return start * 1000, end * 1000 + 1000 if end else 0, bool(start)


@routes.get("/api/v3/allOrders")
@requires(Scope.READ)
async def all_orders(request: web.Request) -> web.Response:
    """`limit` orders of the market, oldest first: from `orderId` or `startTime` on, else the
    newest (before `endTime`); from the ledger's history."""
    who, p, b = await _acting(request)
    market = await market_of(b.markets, p)
    from_id = integer(p, "orderId")
    from_us, to_us, forward = _window(p)
    forward = forward or bool(from_id)
    reply = await b.ledger.GetOrderHistory(
        lpb.GetOrderHistoryRequest(
            user_id=who.user_id,
            market=market.symbol,
            limit=integer(p, "limit", maximum=MAX_LIMIT, default=500) or 500,
            oldest_first=forward,
            from_id=from_id,
            from_us=from_us,
            to_us=to_us,
        )
    )
    await client_ids.learn(b.ledger, who.user_id, (o.client_order_id for o in reply.orders))
    symbol = binance_symbol(market)
    orders = reply.orders if forward else reversed(reply.orders)
    return json_response([order_json(o, symbol) for o in orders])


@routes.get("/api/v3/myTrades")
@requires(Scope.READ)
async def my_trades(request: web.Request) -> web.Response:
    """`limit` of the caller's trades in the market, oldest first: from `fromId` or
    `startTime` on, else the newest (before `endTime`); of one `orderId` if sent."""
    who, p, b = await _acting(request)
    market = await market_of(b.markets, p)
    from_id = integer(p, "fromId")
    from_us, to_us, forward = _window(p)
    forward = forward or bool(from_id)
    reply = await b.ledger.GetFills(
        lpb.GetFillsRequest(
            user_id=who.user_id,
            market=market.symbol,
            from_us=from_us,
            to_us=to_us,
            limit=integer(p, "limit", maximum=MAX_LIMIT, default=500) or 500,
            order_id=integer(p, "orderId"),
            oldest_first=forward,
            from_trade_id=from_id,
        )
    )
    symbol = binance_symbol(market)
    return json_response(
        [
            {
                "symbol": symbol,
                "id": f.trade_id,
                "orderId": f.order_id,
                "orderListId": -1,
                "price": f.price,
                "qty": f.quantity,
                "quoteQty": f.quote_quantity,
                "commission": f.fee or "0",
                "commissionAsset": f.fee_asset or market.quote,
                "time": ms(f.ts_us),
                "isBuyer": f.side == cpb.SIDE_BUY,
                "isMaker": f.is_maker,
                "isBestMatch": True,
            }
            for f in (reply.fills if forward else reversed(reply.fills))
        ]
    )


@routes.get("/api/v3/rateLimit/order")
@requires(Scope.READ)
async def order_rate_limits(request: web.Request) -> web.Response:
    """What the caller has used of the order limits: Binance's per 10 s, and the gateway's
    per second that every dialect shares."""
    who, _, b = await _acting(request)
    tens = weights.orders_rule(request)
    counts = (
        (tens, 10, await weights.order_count(request, who.user_id)),
        (b.order_rule, 1, await b.rate.used(b.order_rule, f"user:{who.user_id}")),
    )
    return json_response(
        [
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": seconds,
                "limit": rule.limit,
                "count": count,
            }
            for rule, seconds, count in counts
        ]
    )


@routes.get("/api/v3/account")
@requires(Scope.READ)
async def account(request: web.Request) -> web.Response:
    """Balances, and the highest fee of any market (fees are per market here)."""
    who, p, b = await _acting(request)
    reply = await b.engine.stub.GetBalances(epb.GetBalancesRequest(user_id=who.user_id))
    markets = await b.markets.all()
    maker = max((m.maker_fee_bps for m in markets), default=0)
    taker = max((m.taker_fee_bps for m in markets), default=0)
    balances = [{"asset": x.asset, "free": x.available, "locked": x.locked} for x in reply.balances]
    omit = p.get("omitZeroBalances", "false")
    if omit not in ("true", "false"):
        raise invalid("omitZeroBalances", "true or false")
    if omit == "true":
        balances = [x for x in balances if Decimal(x["free"]) or Decimal(x["locked"])]
    rate = {"maker": str(Decimal(maker) / 10_000), "taker": str(Decimal(taker) / 10_000)}
    return json_response(
        {
            "makerCommission": maker,
            "takerCommission": taker,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {**rate, "buyer": "0", "seller": "0"},
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": 0,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": who.user_id,
        }
    )
