"""The Binance dialect's operations in the gateway's OpenAPI document (gateway_svc/openapi.py
merges them in). Its answers are described as loosely as Binance's own clients read them:
the shape, the fields they need; every error is `{code, msg}` with Binance's negative code.
"""

from __future__ import annotations

from typing import Any

from gateway_svc.binance.dialect import MAX_MS
from gateway_svc.public import INTERVALS

Json = dict[str, Any]

TAG = "binance"
TAG_DESCRIPTION = (
    "Binance spot's `/api/v3` over the same markets, orders and accounts; symbols are "
    "BASEQUOTE (TATA_INR is TATAINR); parameters are a query string or a form body"
)
_ERROR = {
    "type": "object",
    "properties": {"code": {"type": "integer", "maximum": -1}, "msg": {"type": "string"}},
    "required": ["code", "msg"],
    "additionalProperties": False,
}
_RETRY = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}}
_ERRORS: dict[int, str] = {
    400: "a malformed request (-1100, -1102, -1120, -1121, ...) or an engine rejection",
    401: "no valid signature or key (-1021, -1022, -2014, -2015)",
    403: "authenticated, but not allowed (-2015)",
    404: "no such order of the caller's (-2013)",
    413: "the body is too large (-1000)",
    429: "over the address's request weight (-1003) or the user's orders (-1015); see Retry-After",
    503: "a backend is not answering (-1001)",
}
PUBLIC_ERRORS = (400, 429, 503)
PRIVATE_ERRORS = (400, 401, 403, 404, 413, 429, 503)
SECURITY: list[Json] = [{"bearer": []}, {"binanceApiKey": []}]
SECURITY_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "X-MBX-APIKEY",
    "description": (
        "the API key of an HMAC key (`POST /api/v1/auth/apikeys` with type hmac) or the base64 "
        "ED25519 public key of one of the caller's keys; the parameters then carry "
        "`timestamp` (ms), `recvWindow` (ms, at most 60000, 5000 when absent) and "
        "`signature` over the query string and body exactly as sent: the hex HMAC-SHA256 "
        "under the secret, or base64 ED25519"
    ),
}


def _query(name: str, schema: Json, description: str, *, required: bool = False) -> Json:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


def _object(*required: str) -> Json:
    return {"type": "object", "required": list(required)}


UINT = {"type": "integer", "minimum": 0}
MS_INPUT = {**UINT, "maximum": MAX_MS}
SYMBOL = _query(
    "symbol", {"type": "string", "maxLength": 32}, "e.g. TATAINR for TATA_INR", required=True
)
ONE_OR_ALL = (
    _query("symbol", {"type": "string", "maxLength": 32}, "one market; without: every market"),
    _query("symbols", {"type": "string", "maxLength": 1000}, 'a JSON list, e.g. ["TATAINR"]'),
)
LIMIT = _query("limit", {**UINT, "maximum": 1000}, "at most this many")
START = _query("startTime", MS_INPUT, "ms, inclusive")
END = _query("endTime", MS_INPUT, "ms, inclusive")
TRADE = _object("id", "price", "qty", "quoteQty", "time", "isBuyerMaker")
AGG_TRADE = _object("a", "p", "q", "f", "l", "T", "m")
TICKER = _object("symbol", "lastPrice", "openPrice", "highPrice", "lowPrice", "volume", "count")
PRICE = _object("symbol", "price")
BOOK_TICKER = _object("symbol", "bidPrice", "bidQty", "askPrice", "askQty")


def _one_or_list(item: Json) -> Json:
    return {"anyOf": [item, {"type": "array", "items": item}]}


def _op(operation_id: str, summary: str, ok: Json, *params: Json, private: bool = False) -> Json:
    responses: Json = {
        "200": {"description": "success", "content": {"application/json": {"schema": ok}}}
    }
    for status in PRIVATE_ERRORS if private else PUBLIC_ERRORS:
        responses[str(status)] = {
            "description": _ERRORS[status],
            "headers": _RETRY if status in (429, 503) else {},
            "content": {"application/json": {"schema": _ERROR}},
        }
    op: Json = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [TAG],
        "responses": responses,
    }
    if params:
        op["parameters"] = list(params)
    if private:
        op["security"] = SECURITY
    return op


DECIMAL = {"type": "string", "pattern": r"^[0-9]{1,20}(\.[0-9]{1,20})?$"}
ORDER = _object("symbol", "orderId", "clientOrderId", "price", "origQty", "status", "side")
ORDER_REF = (
    SYMBOL,
    _query("orderId", UINT, "the order's id"),
    _query("origClientOrderId", {"type": "string", "maxLength": 36}, "its newClientOrderId"),
)
NEW_ORDER = (
    SYMBOL,
    _query("side", {"enum": ["BUY", "SELL"]}, "", required=True),
    _query(
        "type",
        {
            "enum": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT",
                "TAKE_PROFIT_LIMIT",
            ]
        },
        "",
        required=True,
    ),
    _query("stopPrice", DECIMAL, "the trigger price of STOP_LOSS(_LIMIT), TAKE_PROFIT(_LIMIT)"),
    _query("timeInForce", {"enum": ["GTC", "IOC", "FOK"]}, "GTC when absent"),
    _query("quantity", DECIMAL, "base"),
    _query("quoteOrderQty", DECIMAL, "quote budget of a MARKET order"),
    _query("price", DECIMAL, "the LIMIT types only"),
    _query(
        "newClientOrderId",
        {"type": "string", "pattern": "^[.A-Z:/a-z0-9_-]{1,36}$"},
        "kept: queries, cancels and executionReport carry it as sent",
    ),
    _query("newOrderRespType", {"enum": ["ACK", "RESULT", "FULL"]}, "FULL when absent"),
    _query(
        "selfTradePreventionMode",
        {"enum": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]},
        "EXPIRE_TAKER when absent",
    ),
)


def private_paths() -> dict[str, dict[str, Json]]:
    orders = {"type": "array", "items": ORDER}
    history = (SYMBOL, _query("orderId", UINT, "from this order id on"), START, END, LIMIT)
    trades = (*history, _query("fromId", UINT, "from this trade id on"))
    optional_symbol = _query("symbol", {"type": "string", "maxLength": 32}, "one market")
    return {
        "/api/v3/order": {
            "post": _op("binanceNewOrder", "Place an order", ORDER, *NEW_ORDER, private=True),
            "get": _op("binanceGetOrder", "One order", ORDER, *ORDER_REF, private=True),
            "delete": _op("binanceCancelOrder", "Cancel an order", ORDER, *ORDER_REF, private=True),
        },
        "/api/v3/order/test": {
            "post": _op(
                "binanceTestOrder",
                "Check an order, place nothing",
                _object(),
                *NEW_ORDER,
                private=True,
            )
        },
        "/api/v3/openOrders": {
            "get": _op(
                "binanceOpenOrders",
                "The caller's open orders",
                orders,
                optional_symbol,
                private=True,
            ),
            "delete": _op(
                "binanceCancelOpenOrders",
                "Cancel the market's open orders",
                orders,
                SYMBOL,
                private=True,
            ),
        },
        "/api/v3/allOrders": {
            "get": _op("binanceAllOrders", "Order history", orders, *history, private=True)
        },
        "/api/v3/myTrades": {
            "get": _op(
                "binanceMyTrades",
                "The caller's trades",
                {"type": "array", "items": _object("id", "orderId", "price", "qty", "isBuyer")},
                *trades,
                private=True,
            )
        },
        "/api/v3/rateLimit/order": {
            "get": _op(
                "binanceOrderRateLimits",
                "The caller's order counts against each order limit",
                {"type": "array", "items": _object("rateLimitType", "interval", "limit", "count")},
                private=True,
            )
        },
        "/api/v3/account": {
            "get": _op(
                "binanceAccount",
                "Balances and commission rates",
                _object("balances", "canTrade", "commissionRates"),
                _query("omitZeroBalances", {"enum": ["true", "false"]}, "false when absent"),
                private=True,
            )
        },
    }


def paths() -> dict[str, dict[str, Json]]:
    return {**public_paths(), **private_paths(), **stream_paths()}


def public_paths() -> dict[str, dict[str, Json]]:
    interval = _query("interval", {"enum": list(INTERVALS)}, "candle width", required=True)
    return {
        "/api/v3/ping": {"get": _op("binancePing", "Connectivity", _object())},
        "/api/v3/time": {"get": _op("binanceTime", "Server time (ms)", _object("serverTime"))},
        "/api/v3/exchangeInfo": {
            "get": _op(
                "binanceExchangeInfo",
                "Markets with filters, and rate limits",
                _object("timezone", "serverTime", "rateLimits", "symbols"),
                *ONE_OR_ALL,
            )
        },
        "/api/v3/depth": {
            "get": _op(
                "binanceDepth",
                "Order book; lastUpdateId continues the depth streams' ids",
                _object("lastUpdateId", "bids", "asks"),
                SYMBOL,
                LIMIT,
            )
        },
        "/api/v3/trades": {
            "get": _op(
                "binanceTrades",
                "Newest trades, oldest first",
                {"type": "array", "items": TRADE},
                SYMBOL,
                LIMIT,
            )
        },
        "/api/v3/historicalTrades": {
            "get": _op(
                "binanceHistoricalTrades",
                "Trades from fromId on (else the newest), oldest first",
                {"type": "array", "items": TRADE},
                SYMBOL,
                LIMIT,
                _query("fromId", UINT, "from this trade id"),
            )
        },
        "/api/v3/aggTrades": {
            "get": _op(
                "binanceAggTrades",
                "Trades as aggregates (one per trade)",
                {"type": "array", "items": AGG_TRADE},
                SYMBOL,
                LIMIT,
                _query("fromId", UINT, "from this trade id"),
                START,
                END,
            )
        },
        **{
            path: {
                "get": _op(
                    operation_id,
                    "Candles: [open time, open, high, low, close, volume, close time, ...]",
                    {"type": "array", "items": {"type": "array"}},
                    SYMBOL,
                    interval,
                    START,
                    END,
                    LIMIT,
                )
            }
            for path, operation_id in (
                ("/api/v3/klines", "binanceKlines"),
                ("/api/v3/uiKlines", "binanceUiKlines"),
            )
        },
        "/api/v3/ticker/24hr": {
            "get": _op("binanceTicker24hr", "Rolling 24 hours", _one_or_list(TICKER), *ONE_OR_ALL)
        },
        "/api/v3/ticker/price": {
            "get": _op("binanceTickerPrice", "Last price", _one_or_list(PRICE), *ONE_OR_ALL)
        },
        "/api/v3/ticker/bookTicker": {
            "get": _op(
                "binanceBookTicker", "Best bid and ask", _one_or_list(BOOK_TICKER), *ONE_OR_ALL
            )
        },
        "/api/v3/avgPrice": {
            "get": _op(
                "binanceAvgPrice",
                "Volume-weighted price of the last 5 minutes",
                _object("mins", "price", "closeTime"),
                SYMBOL,
            )
        },
    }


STREAMS_DESCRIPTION = (
    "Binance's streams, with symbols in lower case: `<symbol>@depth` and `@depth@100ms` (diffs; "
    "`U`/`u` continue `GET /api/v3/depth`'s `lastUpdateId`), `@depth<5|10|20>` (the best levels "
    "as `{lastUpdateId, bids, asks}`, first when subscribed, then as the book changes), "
    "`@trade`, `@aggTrade`, `@kline_<1m|5m|15m|30m|1h|4h|1d|1w>`, `@ticker`, `@miniTicker`, "
    "`@bookTicker`, `!ticker@arr`, `!miniTicker@arr`, or a listen key (the caller's "
    "`executionReport`, `outboundAccountPosition` and `listenKeyExpired`). Every stream goes "
    "out at the gateway's interval (GATEWAY_WS_INTERVAL_MS; `?interval=0` for real time). "
    'Frames in: `{"method": "SUBSCRIBE"|"UNSUBSCRIBE"|"LIST_SUBSCRIPTIONS"|"SET_PROPERTY"|'
    '"GET_PROPERTY", "params": [...], "id": ..}`, answered `{result, id}` or `{error: {code, '
    "msg}, id}` with code 3 (not JSON) or 2 (any other bad request: an unknown stream or "
    "method, too many streams). A stream named in the URL that does not exist is a 400 "
    "before the upgrade."
)


def _socket(operation_id: str, summary: str, description: str, *params: Json) -> Json:
    op: Json = {
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "tags": [TAG],
        "responses": {
            "101": {"description": "switching to WebSocket"},
            "400": {"description": "an unknown stream or listen key, or too many streams"},
        },
        "x-streaming": True,  # never ends: tests/stream covers it
    }
    if params:
        op["parameters"] = list(params)
    return op


def stream_paths() -> dict[str, dict[str, Json]]:
    listen_key = _query("listenKey", {"type": "string", "maxLength": 64}, "", required=True)
    key_only = (
        "Needs only `X-MBX-APIKEY` (a key with the READ scope, from an allowed address; no "
        "signature), as on Binance, or the bearer token. A key lasts 60 minutes from its "
        "creation or its last keep-alive, on every replica."
    )
    streams = {"type": "string", "maxLength": 2000}
    data_stream = {
        method: {
            **_op(operation_id, summary, ok, *params, private=True),
            "description": key_only,
        }
        for method, operation_id, summary, ok, params in (
            ("post", "binanceNewListenKey", "A listen key for the user-data stream",
             _object("listenKey"), ()),
            ("put", "binanceKeepListenKey", "Keep a listen key 60 minutes more", _object(),
             (listen_key,)),
            ("delete", "binanceCloseListenKey", "End a listen key and its streams", _object(),
             (listen_key,)),
        )
    }  # fmt: skip
    return {
        "/api/v3/userDataStream": data_stream,
        "/ws/{streams}": {
            "get": _socket(
                "binanceRawStreams",
                "Binance streams over WebSocket: the payloads as they are",
                STREAMS_DESCRIPTION + " A name of up to 8 characters without `@` only labels "
                "the connection (`/ws/0`).",
                {
                    "name": "streams",
                    "in": "path",
                    "required": True,
                    "schema": streams,
                    "description": "stream names or a listen key, `/`-separated",
                },
            )
        },
        "/stream": {
            "get": _socket(
                "binanceCombinedStreams",
                "Binance streams over WebSocket as {stream, data}",
                STREAMS_DESCRIPTION,
                _query("streams", streams, "stream names, `/`-separated"),
            )
        },
        "/ws-api/v3": {
            "get": _socket(
                "binanceWebSocketApi",
                "Binance's WebSocket API: the user-data stream by signature",
                "Requests `{id, method, params}`: `userDataStream.subscribe.signature` "
                "(params `apiKey`, `timestamp`, `recvWindow`?, `signature`: ED25519 over the "
                "other params sorted by name as `k=v&...`), `userDataStream.unsubscribe`, "
                "`session.subscriptions`, `ping`, `time`. Answers `{id, status, result}` or "
                "`{id, status, error: {code, msg}}` with Binance's codes; events "
                "`{subscriptionId, event}`.",
            )
        },
    }
