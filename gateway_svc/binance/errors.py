"""The one table from the gateway's errors to Binance's `{"code": -NNNN, "msg": "..."}`.

Every handler raises the gateway's `ApiError`, whatever the dialect; on `/api/v3` paths the
error middleware renders it here. The engine's finer reason (`details.reason`) picks the code
where Binance has one of its own (a filter failure, a maker-only order that would take), and
the message is Binance's own wording where clients match on it (ccxt maps
"Account has insufficient balance for requested action." to InsufficientFunds).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from gateway_svc.errors import ApiError

PREFIX = "/api/v3/"

# The gateway's code -> (Binance code, Binance's message, or "" to keep ours).
_BY_CODE: dict[str, tuple[int, str]] = {
    "INVALID_CLIENT_REQUEST": (-1100, ""),
    "MANDATORY_PARAM_MISSING": (-1102, ""),
    "BAD_PRECISION": (-1111, "Precision is over the maximum defined for this asset."),
    "INVALID_TIF": (-1115, "Invalid timeInForce."),
    "INVALID_ORDER_TYPE": (-1116, "Invalid orderType."),
    "INVALID_SIDE": (-1117, "Invalid side."),
    "BAD_INTERVAL": (-1120, "Invalid interval."),
    "TIME_SPAN_TOO_LONG": (-1127, ""),
    "INVALID_MARKET": (-1121, "Invalid symbol."),
    "INVALID_ASSET": (-1100, ""),
    "INVALID_PRICE": (-1013, "Filter failure: PRICE_FILTER"),
    "INVALID_QUANTITY": (-1013, "Filter failure: LOT_SIZE"),
    "INVALID_ORDER": (-2010, ""),
    "INSUFFICIENT_FUNDS": (-2010, "Account has insufficient balance for requested action."),
    "TRADING_PAUSED": (-1013, "Market is closed."),
    "DUPLICATE_CLIENT_ID": (-2010, "Duplicate order sent."),
    "ALREADY_EXISTS": (-2010, ""),
    "RESOURCE_NOT_FOUND": (-1000, ""),
    "CANCEL_REJECTED": (-2011, "Unknown order sent."),
    "INVALID_LISTEN_KEY": (-1125, "This listenKey does not exist."),
    "TIMESTAMP_OUTSIDE_WINDOW": (
        -1021,
        "Timestamp for this request is outside of the recvWindow.",
    ),
    "INVALID_SIGNATURE": (-1022, ""),
    "BAD_API_KEY_FORMAT": (-2014, "API-key format invalid."),
    "UNAUTHORIZED": (-2015, "Invalid API-key, IP, or permissions for action."),
    "FORBIDDEN": (-2015, "Invalid API-key, IP, or permissions for action."),
    "TOO_MANY_REQUESTS": (-1003, ""),
    "TOO_MANY_ORDERS": (-1015, ""),
    "METHOD_NOT_ALLOWED": (-1000, ""),
    "PAYLOAD_TOO_LARGE": (-1000, ""),
    "SERVICE_UNAVAILABLE": (-1001, "Internal error; unable to process your request."),
    "SERVER_ERROR": (-1000, "An unknown error occurred while processing the request."),
}
# The engine's reason (details.reason) where it is finer than the code.
_BY_REASON: dict[str, tuple[int, str]] = {
    "ORDER_NOT_FOUND": (-2013, "Order does not exist."),
    "BELOW_MIN_QUANTITY": (-1013, "Filter failure: LOT_SIZE"),
    "BELOW_MIN_NOTIONAL": (-1013, "Filter failure: NOTIONAL"),
    "POST_ONLY_WOULD_TAKE": (-2010, "Order would immediately match and take."),
    "FOK_NOT_FILLABLE": (-2010, "Order would not fill completely (FOK)."),
    "TRIGGER_WOULD_FIRE": (-2010, "Stop price would trigger immediately."),
    "TRIGGER_LIMIT": (-2010, "Too many pending stop orders."),
}


def binance_code(error: ApiError) -> tuple[int, str]:
    """The Binance code and message of an error."""
    code, message = _BY_REASON.get(str(error.details.get("reason", "")), (0, ""))
    if not code:
        code, message = _BY_CODE.get(error.code, (-1000, ""))
    return code, message or error.message


def response(error: ApiError) -> web.Response:
    code, message = binance_code(error)
    return web.Response(
        status=error.status,
        body=orjson.dumps({"code": code, "msg": message}),
        content_type="application/json",
        headers=error.headers,
    )
