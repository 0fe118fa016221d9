"""Reading Binance requests and writing Binance answers; no handler logic here.

Symbols are `BASEQUOTE` (`TATA_INR` is `TATAINR`); parameters come as a query string or a
form body, never JSON; times are milliseconds. Order fields are Binance's names for the same
`cpb.Order` the other dialects render.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from exchange.common.v1 import common_pb2 as cpb
from gateway_svc.binance.client_ids import known
from gateway_svc.errors import ApiError

if TYPE_CHECKING:
    from gateway_svc.context import Markets

MAX_MS = (2**63 - 1) // 1000  # times in ms that are still int64 microseconds
HOUR_MS = 3_600_000
FORM = "application/x-www-form-urlencoded"

SIDES = {"BUY": cpb.SIDE_BUY, "SELL": cpb.SIDE_SELL}
SIDE_NAMES = {v: k for k, v in SIDES.items()}
TIFS = {"GTC": cpb.TIME_IN_FORCE_GTC, "IOC": cpb.TIME_IN_FORCE_IOC, "FOK": cpb.TIME_IN_FORCE_FOK}
TIF_NAMES = {v: k for k, v in TIFS.items()}
STATUS_NAMES = {
    cpb.ORDER_STATUS_NEW: "NEW",
    cpb.ORDER_STATUS_PARTIALLY_FILLED: "PARTIALLY_FILLED",
    cpb.ORDER_STATUS_FILLED: "FILLED",
    cpb.ORDER_STATUS_CANCELLED: "CANCELED",
    cpb.ORDER_STATUS_EXPIRED: "EXPIRED",
    cpb.ORDER_STATUS_REJECTED: "REJECTED",
    cpb.ORDER_STATUS_TRIGGER_PENDING: "NEW",
    cpb.ORDER_STATUS_TRIGGER_FAILED: "REJECTED",
}
STPS = {
    "NONE": cpb.SELF_TRADE_PREVENTION_UNSPECIFIED,
    "EXPIRE_TAKER": cpb.SELF_TRADE_PREVENTION_REJECT_TAKER,
    "EXPIRE_MAKER": cpb.SELF_TRADE_PREVENTION_CANCEL_MAKER,
    "EXPIRE_BOTH": cpb.SELF_TRADE_PREVENTION_CANCEL_BOTH,
}
STP_NAMES = {
    cpb.SELF_TRADE_PREVENTION_UNSPECIFIED: "EXPIRE_TAKER",
    cpb.SELF_TRADE_PREVENTION_REJECT_TAKER: "EXPIRE_TAKER",
    cpb.SELF_TRADE_PREVENTION_CANCEL_MAKER: "EXPIRE_MAKER",
    cpb.SELF_TRADE_PREVENTION_CANCEL_BOTH: "EXPIRE_BOTH",
}
# What Binance allows in newClientOrderId.
CLIENT_ID = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}").fullmatch


def missing(field: str) -> ApiError:
    return ApiError(
        400,
        "MANDATORY_PARAM_MISSING",
        f"Mandatory parameter '{field}' was not sent, was empty/null, or malformed.",
        {"field": field},
    )


def invalid(field: str, why: str) -> ApiError:
    return ApiError(400, "INVALID_CLIENT_REQUEST", f"Illegal value for '{field}': {why}.")


async def read_params(request: web.Request) -> tuple[dict[str, str], str, str]:
    """The parameters (query, then a form body), and the query and body as sent (Binance
    signs their concatenation)."""
    query = request.rel_url.raw_query_string  # as sent: the decoded one would not verify
    body = ""
    if request.body_exists:
        if request.content_type not in (FORM, "application/octet-stream", ""):
            raise invalid("Content-Type", f"send parameters as a query or {FORM}")
        body = (await request.read()).decode("utf-8", "replace")
    merged: dict[str, str] = {}
    for text in (query, body):
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
        except ValueError:
            raise invalid("parameters", "not a query string") from None
        for key, value in pairs:
            if key in merged:
                raise ApiError(400, "INVALID_CLIENT_REQUEST", f"Duplicate parameter '{key}'.")
            merged[key] = value
    merged.pop("signature", None)
    return merged, query, body


def integer(p: dict[str, str], field: str, *, maximum: int = 2**63 - 1, default: int = 0) -> int:
    value = p.get(field, "")
    if value == "":
        return default
    if not (value.isascii() and value.isdigit() and len(value) <= 20) or int(value) > maximum:
        raise invalid(field, f"an integer from 0 to {maximum}")
    return int(value)


def time_span(p: dict[str, str], hours: int) -> tuple[int, int]:
    """`startTime` and `endTime` in ms (0 if not sent). Binance refuses the two further
    apart than the endpoint's span with -1127; exactly the span passes (ccxt asks
    aggTrades for `since` + 1 h)."""
    start = integer(p, "startTime", maximum=MAX_MS)
    end = integer(p, "endTime", maximum=MAX_MS)
    if start and end and end - start > hours * HOUR_MS:
        raise ApiError(
            400,
            "TIME_SPAN_TOO_LONG",
            f"More than {hours} hours between startTime and endTime.",
            {"hours": hours},
        )
    return start, end


def choice(p: dict[str, str], field: str, table: dict[str, Any], code: str) -> Any:
    value = p.get(field, "")
    if value not in table:
        raise ApiError(400, code, f"Invalid {field}.")
    return table[value]


def binance_symbol(m: cpb.Market) -> str:
    return m.base + m.quote


async def by_symbol(markets: Markets) -> dict[str, cpb.Market]:
    return {binance_symbol(m): m for m in await markets.all()}


async def market_named(markets: Markets, name: str) -> cpb.Market:
    """The market a Binance symbol names, or -1121."""
    found = (await by_symbol(markets)).get(name)
    if found is None and len(name) <= 32:
        await markets.refresh()
        found = (await by_symbol(markets)).get(name)
    if found is None:
        raise ApiError(400, "INVALID_MARKET", "Invalid symbol.")
    return found


async def market_of(markets: Markets, p: dict[str, str]) -> cpb.Market:
    name = p.get("symbol", "")
    if not name:
        raise missing("symbol")
    return await market_named(markets, name)


def ms(ts_us: int) -> int:
    return ts_us // 1000


def number(text: str) -> str:
    """Binance never sends an empty number: "" (no price yet) is "0"."""
    return text or "0"


def stop_above(side: int, stop_loss: bool) -> bool:
    """Whether a stop-loss (else a take-profit) of this side lies above the price: a sell's
    stop-loss lies below it, a buy's above."""
    return (side == cpb.SIDE_BUY) == stop_loss


def order_type(o: cpb.Order) -> str:
    """Binance's name of the order's type."""
    limit = o.type == cpb.ORDER_TYPE_LIMIT
    if o.trigger_price:
        stop_loss = stop_above(o.side, True) == o.trigger_above
        return ("STOP_LOSS" if stop_loss else "TAKE_PROFIT") + ("_LIMIT" if limit else "")
    return "LIMIT_MAKER" if o.post_only and limit else "LIMIT" if limit else "MARKET"


def order_json(o: cpb.Order, symbol: str, client_id: str = "") -> dict[str, Any]:
    """An order as GET /api/v3/order answers (the RESULT form of a new order, too)."""
    pending = o.status == cpb.ORDER_STATUS_TRIGGER_PENDING
    return {
        "symbol": symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": client_id or known(o.client_order_id),
        "price": number(o.price),
        "origQty": number(o.quantity),
        "executedQty": number(o.executed_quantity),
        "cummulativeQuoteQty": number(o.executed_quote_quantity),
        "origQuoteOrderQty": number(o.quote_quantity),
        "status": STATUS_NAMES.get(o.status, "NEW"),
        "timeInForce": TIF_NAMES.get(o.time_in_force, "GTC"),
        "type": order_type(o),
        "side": SIDE_NAMES.get(o.side, "BUY"),
        "stopPrice": o.trigger_price or "0",
        "icebergQty": "0",
        "time": ms(o.created_at_us),
        "updateTime": ms(o.updated_at_us or o.created_at_us),
        "transactTime": ms(o.updated_at_us or o.created_at_us),
        "workingTime": -1 if pending else ms(o.created_at_us),
        "isWorking": o.status in (cpb.ORDER_STATUS_NEW, cpb.ORDER_STATUS_PARTIALLY_FILLED),
        "selfTradePreventionMode": STP_NAMES.get(o.self_trade_prevention, "EXPIRE_TAKER"),
    }
