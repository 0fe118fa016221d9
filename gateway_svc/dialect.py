"""The two dialects of the API: the project's spec and Backpack's (what ccxt speaks).

Requests: an order body may say `{market, side: "buy", price, quantity}` (spec) or
`{symbol, side: "Bid", orderType: "Limit", ...}` (Backpack); both parse to one
PlaceOrderRequest. Responses carry the fields both kinds of client read (`id` and
`orderId`, `executedQuantity` and `executedQty`, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from gateway_svc.errors import bad_request, forbidden
from tradekit.backpack import STATUS_NAMES

MAX_CLIENT_ID = 2**32 - 1
E = TypeVar("E")

_SIDES = {"bid": cpb.SIDE_BUY, "buy": cpb.SIDE_BUY, "ask": cpb.SIDE_SELL, "sell": cpb.SIDE_SELL}
_TYPES = {"limit": cpb.ORDER_TYPE_LIMIT, "market": cpb.ORDER_TYPE_MARKET}
_TIFS = {
    "gtc": cpb.TIME_IN_FORCE_GTC,
    "ioc": cpb.TIME_IN_FORCE_IOC,
    "fok": cpb.TIME_IN_FORCE_FOK,
}
_STPS = {
    "rejecttaker": cpb.SELF_TRADE_PREVENTION_REJECT_TAKER,
    "rejectmaker": cpb.SELF_TRADE_PREVENTION_CANCEL_MAKER,
    "rejectboth": cpb.SELF_TRADE_PREVENTION_CANCEL_BOTH,
    "reject_taker": cpb.SELF_TRADE_PREVENTION_REJECT_TAKER,
    "cancel_maker": cpb.SELF_TRADE_PREVENTION_CANCEL_MAKER,
    "cancel_both": cpb.SELF_TRADE_PREVENTION_CANCEL_BOTH,
}
SIDE_NAMES = {cpb.SIDE_BUY: "Bid", cpb.SIDE_SELL: "Ask"}
_TYPE_NAMES = {cpb.ORDER_TYPE_LIMIT: "Limit", cpb.ORDER_TYPE_MARKET: "Market"}
TIF_NAMES = {
    cpb.TIME_IN_FORCE_GTC: "GTC",
    cpb.TIME_IN_FORCE_IOC: "IOC",
    cpb.TIME_IN_FORCE_FOK: "FOK",
}
_STP_NAMES = {
    cpb.SELF_TRADE_PREVENTION_REJECT_TAKER: "RejectTaker",
    cpb.SELF_TRADE_PREVENTION_CANCEL_MAKER: "RejectMaker",
    cpb.SELF_TRADE_PREVENTION_CANCEL_BOTH: "RejectBoth",
}
STATUS_BY_NAME = {name.lower(): status for status, name in STATUS_NAMES.items()}


# ---- reading requests -------------------------------------------------------------------


def market_of(params: dict[str, Any], *, required: bool = True) -> str:
    """The market a request names, as `symbol` (Backpack) or `market` (spec)."""
    value = params.get("symbol")
    if value is None or value == "":
        value = params.get("market")
    if value is None or value == "":
        if required:
            raise bad_request("symbol is required", field="symbol")
        return ""
    # Not printable (a NUL, a control character) names no market, and PostgreSQL's text
    # cannot even hold a NUL: refused here rather than failing in the ledger's query.
    if not isinstance(value, str) or len(value) > 32 or not value.isprintable():
        raise bad_request("symbol must be a market symbol such as TATA_INR", field="symbol")
    return value


def check_user(params: dict[str, Any], user_id: int) -> None:
    """A `userId` in a request is allowed only when it is the authenticated user."""
    claimed = params.get("userId")
    if claimed is None:
        return
    if isinstance(claimed, bool) or not str(claimed).isdigit():
        raise bad_request("userId must be a user id", field="userId")
    if str(claimed) != str(user_id):
        raise forbidden("userId does not match the authenticated user")


def decimal_text(params: dict[str, Any], field: str) -> str:
    """A decimal field as the engine's plain string ("" when absent); JSON numbers accepted."""
    value = params.get(field)
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        raise bad_request(f"{field} must be a decimal string", field=field)
    if isinstance(value, int | float):
        try:
            value = format(Decimal(repr(value)), "f")
        except InvalidOperation:
            raise bad_request(f"{field} must be a finite decimal", field=field) from None
    if not isinstance(value, str) or len(value) > 64:
        raise bad_request(f"{field} must be a decimal string", field=field)
    return value


def uint(params: dict[str, Any], field: str, *, maximum: int = 2**63 - 1) -> int:
    """A non-negative integer field (0 when absent), given as a number or a string."""
    value = params.get(field)
    if value is None or value == "":
        return 0
    # isdigit() is also true of "²" and of strings too long for int(): ASCII, 20 digits at most.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise bad_request(f"{field} must be an integer from 0 to {maximum}", field=field)
    return value


def _choice(params: dict[str, Any], field: str, table: Mapping[str, E], default: E) -> E:
    value = params.get(field)
    if value is None or value == "":
        return default
    if not isinstance(value, str) or value.lower() not in table:
        raise bad_request(f"{field} is not one of the accepted values", field=field)
    return table[value.lower()]


def _flag(params: dict[str, Any], field: str) -> bool:
    value = params.get(field, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    raise bad_request(f"{field} must be true or false", field=field)


def place_request(params: dict[str, Any], user_id: int) -> epb.PlaceOrderRequest:
    """A PlaceOrderRequest from an order body in either dialect."""
    if not isinstance(params, dict):
        raise bad_request("an order must be a JSON object")
    check_user(params, user_id)
    side = params.get("side")
    if not isinstance(side, str) or side.lower() not in _SIDES:
        raise bad_request('side must be "Bid"/"Ask" or "buy"/"sell"', field="side")
    price = decimal_text(params, "price")
    default_type = cpb.ORDER_TYPE_LIMIT if price else cpb.ORDER_TYPE_MARKET
    request = epb.PlaceOrderRequest(
        user_id=user_id,
        market=market_of(params),
        side=_SIDES[side.lower()],
        type=_choice(params, "orderType", _TYPES, default_type),
        price=price,
        quantity=decimal_text(params, "quantity"),
        quote_quantity=decimal_text(params, "quoteQuantity"),
        time_in_force=_choice(params, "timeInForce", _TIFS, cpb.TIME_IN_FORCE_UNSPECIFIED),
        post_only=_flag(params, "postOnly"),
        client_order_id=uint(params, "clientId", maximum=MAX_CLIENT_ID),
        self_trade_prevention=_choice(
            params, "selfTradePrevention", _STPS, cpb.SELF_TRADE_PREVENTION_UNSPECIFIED
        ),
    )
    _read_conditional(params, request)
    return request


# Conditional order fields: Backpack's names, the same in the spec dialect.
_CONDITIONAL_PRICES = {
    "triggerPrice": "trigger_price",
    "takeProfitTriggerPrice": "take_profit_trigger_price",
    "takeProfitLimitPrice": "take_profit_limit_price",
    "stopLossTriggerPrice": "stop_loss_trigger_price",
    "stopLossLimitPrice": "stop_loss_limit_price",
}
TRIGGER_BY = "LastPrice"  # the only price a trigger follows for now


def _read_conditional(params: dict[str, Any], request: epb.PlaceOrderRequest) -> None:
    """Trigger and take-profit / stop-loss fields. A trigger order gives its quantity as
    `triggerQuantity` (ccxt's createTriggerOrder), or as `quantity`, not both."""
    for field, attr in _CONDITIONAL_PRICES.items():
        setattr(request, attr, decimal_text(params, field))
    trigger_qty = decimal_text(params, "triggerQuantity")
    if trigger_qty:
        if not request.trigger_price:
            raise bad_request("triggerQuantity needs a triggerPrice", field="triggerQuantity")
        if request.quantity:
            raise bad_request("give quantity or triggerQuantity, not both", field="triggerQuantity")
        request.quantity = trigger_qty
    for field in ("triggerBy", "takeProfitTriggerBy", "stopLossTriggerBy"):
        value = params.get(field)
        if value not in (None, "", TRIGGER_BY):
            raise bad_request(f'{field}: only "{TRIGGER_BY}" is supported', field=field)


# ---- writing responses ------------------------------------------------------------------


def order_json(o: cpb.Order, fills: list[cpb.Fill] | None = None) -> dict[str, Any]:
    """An order as both dialects read it."""
    out: dict[str, Any] = {
        "id": str(o.order_id),
        "orderId": str(o.order_id),
        "clientId": o.client_order_id or None,
        "symbol": o.market,
        "market": o.market,
        "side": SIDE_NAMES.get(o.side, "Bid"),
        "orderType": _TYPE_NAMES.get(o.type, "Limit"),
        "timeInForce": TIF_NAMES.get(o.time_in_force, "GTC"),
        "selfTradePrevention": _STP_NAMES.get(o.self_trade_prevention, "RejectTaker"),
        "postOnly": o.post_only,
        "price": o.price or None,
        "quantity": o.quantity or None,
        "quoteQuantity": o.quote_quantity or None,
        "executedQuantity": o.executed_quantity,
        "executedQty": o.executed_quantity,
        "executedQuoteQuantity": o.executed_quote_quantity,
        "status": STATUS_NAMES.get(o.status, "New"),
        "createdAt": o.created_at_us // 1000,
        "userId": str(o.user_id),
        **_conditional_json(o),
    }
    if fills is not None:
        out["fills"] = [
            {
                "price": f.price,
                "qty": f.quantity,
                "quantity": f.quantity,
                "tradeId": str(f.trade_id),
            }
            for f in fills
        ]
    return out


def _conditional_json(o: cpb.Order) -> dict[str, Any]:
    """The trigger and take-profit / stop-loss fields of an order view (null when unset)."""
    trigger = bool(o.trigger_price)
    return {
        "triggerPrice": o.trigger_price or None,
        "triggerQuantity": o.quantity or None if trigger else None,
        "triggerBy": TRIGGER_BY if trigger else None,
        "triggeredAt": o.triggered_at_us // 1000 if o.triggered_at_us else None,
        "takeProfitTriggerPrice": o.take_profit_trigger_price or None,
        "takeProfitLimitPrice": o.take_profit_limit_price or None,
        "takeProfitTriggerBy": TRIGGER_BY if o.take_profit_trigger_price else None,
        "stopLossTriggerPrice": o.stop_loss_trigger_price or None,
        "stopLossLimitPrice": o.stop_loss_limit_price or None,
        "stopLossTriggerBy": TRIGGER_BY if o.stop_loss_trigger_price else None,
        "relatedOrderId": str(o.related_order_id) if o.related_order_id else None,
        "parentOrderId": str(o.parent_order_id) if o.parent_order_id else None,
        "triggerFailure": o.trigger_failure or None,
    }


def fill_json(f: lpb.UserFill) -> dict[str, Any]:
    return {
        "tradeId": str(f.trade_id),
        "orderId": str(f.order_id),
        "clientId": f.client_order_id or None,
        "symbol": f.market,
        "side": SIDE_NAMES.get(f.side, "Bid"),
        "price": f.price,
        "quantity": f.quantity,
        "quoteQuantity": f.quote_quantity,
        "fee": f.fee,
        "feeSymbol": f.fee_asset,
        "isMaker": f.is_maker,
        "timestamp": iso_ms(f.ts_us),
    }


def iso_ms(ts_us: int) -> str:
    """ISO-8601 UTC with milliseconds and no zone suffix, as Backpack writes times."""
    return datetime.fromtimestamp(ts_us / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def kline_time(ts_us: int) -> str:
    return datetime.fromtimestamp(ts_us // 1_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S")
