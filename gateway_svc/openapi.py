"""The OpenAPI 3.1 document of the REST API, served at /api/v1/openapi.json, and a docs page.

The document is Python data built once at import, next to the code it describes, so that a
test can hold the two together: every route the app registers is an operation here and
every operation is a route (tests/gateway/test_openapi.py), and schemathesis calls each
operation on a live stack and checks the answers against it. HEAD, which aiohttp adds to
every GET, is left implicit.

Both dialects are described where they differ: a market is `symbol` (Backpack) or
`market` (the spec), a side `Bid`/`Ask` or `buy`/`sell`. Responses carry the fields both
kinds of client read. Every error has the one body of errors.py.
"""

from __future__ import annotations

import html
from typing import Any

import orjson
from aiohttp import web

from gateway_svc.auth import DEFAULT_WINDOW_MS, MAX_WINDOW_MS
from gateway_svc.binance import openapi as binance_openapi
from gateway_svc.capital import DEPOSIT_STATUSES, WITHDRAWAL_STAGES, WITHDRAWAL_STATUSES
from gateway_svc.dialect import MAX_CLIENT_ID
from gateway_svc.private import MAX_BATCH_ORDERS, MAX_MS
from gateway_svc.public import INTERVALS
from tradekit.backpack import INSTRUCTIONS

Json = dict[str, Any]

DOC_PATH = "/api/v1/openapi.json"
DOCS_PATH = "/api/v1/docs"
MAX_ID = 2**63 - 1
ORDER_STATUSES = [
    "New", "PartiallyFilled", "Filled", "Cancelled", "Expired", "Rejected", "TriggerPending",
    "TriggerFailed",
]  # fmt: skip


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Json) -> Json:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: Json, *, optional: tuple[str, ...] = ()) -> Json:
    """A response object whose fields are all present except `optional`, and nothing else:
    a field the code adds or drops without the document fails the schemathesis test."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


DIGITS = {"type": "string", "pattern": "^[0-9]+$"}
TEXT = {"type": "string"}
MS = {"type": "integer", "description": "milliseconds since the Unix epoch"}
D = _ref("Decimal")
ISO_MS = {
    "type": "string",
    "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$",
    "description": "ISO-8601 UTC, milliseconds, no zone suffix (as Backpack)",
}


def _id_input(maximum: int) -> Json:
    """An id in a JSON body: a number or a string of digits; empty, null or 0 mean none."""
    return {
        "anyOf": [
            {"type": "integer", "minimum": 0, "maximum": maximum},
            {"type": "string", "pattern": f"^[0-9]{{0,{len(str(maximum))}}}$"},
            {"type": "null"},
        ],
    }


def _choice(*names: str) -> Json:
    """A name the code reads case-insensitively; empty or null mean the default."""
    return {"enum": [*names, "", None], "description": "any case; empty or null: the default"}


# The conditional-order fields of an order view: null on an order that is none.
_ORDER_CONDITIONS: Json = {
    "triggerPrice": _nullable(D),
    "triggerQuantity": _nullable({**D, "description": "a trigger order's quantity"}),
    "triggerBy": _nullable({"enum": ["LastPrice"]}),
    "triggeredAt": _nullable(MS),
    "takeProfitTriggerPrice": _nullable(D),
    "takeProfitLimitPrice": _nullable(D),
    "takeProfitTriggerBy": _nullable({"enum": ["LastPrice"]}),
    "stopLossTriggerPrice": _nullable(D),
    "stopLossLimitPrice": _nullable(D),
    "stopLossTriggerBy": _nullable({"enum": ["LastPrice"]}),
    "relatedOrderId": _nullable({**DIGITS, "description": "the other leg of a TP/SL pair"}),
    "parentOrderId": _nullable({**DIGITS, "description": "the order a TP/SL leg is for"}),
    "triggerFailure": _nullable(
        {"type": "string", "description": "TriggerFailed: why the order was refused"}
    ),
}


SCHEMAS: dict[str, Json] = {
    # ---- values ----
    "Decimal": {
        "type": "string",
        "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
        "description": "an exact decimal, as a string; never a float",
        "examples": ["1600.00"],
    },
    "DecimalInput": {
        "description": "a decimal string (preferred) or a JSON number; empty or null: none",
        "anyOf": [
            {"type": "string", "pattern": r"^([0-9]{1,30}(\.[0-9]{1,30})?)?$"},
            {"type": "number", "minimum": 0},
            {"type": "null"},
        ],
    },
    "IdInput": _id_input(MAX_ID),
    "SymbolInput": {
        "type": ["string", "null"],
        "maxLength": 32,
        "description": "a market symbol, BASE_QUOTE; empty or null: not given",
        "examples": ["TATA_INR"],
    },
    # ---- errors ----
    "Error": _object(
        {
            "code": {"type": "string", "description": "stable; Backpack's where one fits"},
            "message": TEXT,
            "error": _object(
                {
                    "code": TEXT,
                    "message": TEXT,
                    "details": {
                        "type": "object",
                        "description": "`reason` is the engine's finer result code",
                    },
                }
            ),
        }
    ),
    # ---- public ----
    "Status": _object({"status": {"const": "Ok"}, "message": {"type": "null"}}),
    "Asset": _object(
        {
            "symbol": TEXT,
            "decimals": {"type": "integer", "minimum": 0},
            "tokens": {"type": "array", "items": _ref("Token"), "description": "its networks"},
        }
    ),
    "Token": _object(
        {
            "blockchain": {**TEXT, "description": "the network (ccxt's network id)"},
            "contractAddress": {"type": "null"},
            "depositEnabled": {"type": "boolean"},
            "withdrawEnabled": {"type": "boolean"},
            "minimumDeposit": D,
            "minimumWithdrawal": D,
            "maximumWithdrawal": _nullable(D),
            "withdrawalFee": {**D, "description": "charged on top of the quantity"},
            "depositConfirmations": {"type": "integer", "minimum": 0},
            "approvalThreshold": _nullable(
                {**D, "description": "a withdrawal above it waits for an operator"}
            ),
            "dailyLimit": _nullable({**D, "description": "per user over 24 hours"}),
        }
    ),
    "Market": _object(
        {
            "symbol": TEXT,
            "baseSymbol": TEXT,
            "quoteSymbol": TEXT,
            "marketType": {"const": "SPOT"},
            "orderBookState": {"enum": ["Open", "Closed"]},
            "filters": _object(
                {
                    "price": _object({"tickSize": D, "minPrice": D, "maxPrice": D}),
                    "quantity": _object({"stepSize": D, "minQuantity": D, "maxQuantity": D}),
                }
            ),
            "minNotional": D,
            "makerFeeBps": {"type": "integer"},
            "takerFeeBps": {"type": "integer"},
        }
    ),
    "Depth": _object(
        {
            "symbol": TEXT,
            "bids": {
                "type": "array",
                "description": "[price, quantity], best first",
                "items": {"type": "array", "items": D, "minItems": 2, "maxItems": 2},
            },
            "asks": {
                "type": "array",
                "description": "[price, quantity], best first",
                "items": {"type": "array", "items": D, "minItems": 2, "maxItems": 2},
            },
            "lastUpdateId": DIGITS,
            "timestamp": {"type": "integer", "description": "microseconds since the epoch"},
        }
    ),
    "Trade": _object(
        {
            "id": {"type": "integer", "minimum": 0},
            "price": D,
            "quantity": D,
            "quoteQuantity": D,
            "timestamp": MS,
            "isBuyerMaker": {"type": "boolean"},
        }
    ),
    "Kline": _object(
        {
            "start": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"},
            "end": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"},
            "open": D,
            "high": D,
            "low": D,
            "close": D,
            "volume": D,
            "quoteVolume": D,
            "trades": DIGITS,
        }
    ),
    "Ticker": _object(
        {
            "symbol": TEXT,
            "firstPrice": _nullable(D),
            "lastPrice": _nullable(D),
            "high": _nullable(D),
            "low": _nullable(D),
            "volume": D,
            "quoteVolume": D,
            "priceChange": D,
            "priceChangePercent": {**D, "description": "a fraction: 0.01 is 1%"},
            "trades": DIGITS,
        }
    ),
    # ---- private ----
    "Balance": _object({"available": D, "locked": D, "staked": D}),
    "Capital": {
        "type": "object",
        "description": "balances by asset symbol",
        "additionalProperties": _ref("Balance"),
    },
    "OrderFill": _object({"price": D, "qty": D, "quantity": D, "tradeId": DIGITS}),
    "Order": _object(
        {
            "id": DIGITS,
            "orderId": DIGITS,
            "clientId": _nullable({"type": "integer"}),
            "symbol": TEXT,
            "market": TEXT,
            "side": {"enum": ["Bid", "Ask"]},
            "orderType": {"enum": ["Limit", "Market"]},
            "timeInForce": {"enum": ["GTC", "IOC", "FOK"]},
            "selfTradePrevention": {"enum": ["RejectTaker", "RejectMaker", "RejectBoth"]},
            "postOnly": {"type": "boolean"},
            "price": _nullable(D),
            "quantity": _nullable(D),
            "quoteQuantity": _nullable(D),
            "executedQuantity": D,
            "executedQty": D,
            "executedQuoteQuantity": D,
            "status": {"enum": ORDER_STATUSES},
            "createdAt": MS,
            "userId": DIGITS,
            **_ORDER_CONDITIONS,
            "fills": {
                "type": "array",
                "items": _ref("OrderFill"),
                "description": "only in the answer to placing the order",
            },
        },
        optional=("fills",),
    ),
    "OrderResult": {"anyOf": [_ref("Order"), _ref("Error")]},
    "UserFill": _object(
        {
            "tradeId": DIGITS,
            "orderId": DIGITS,
            "clientId": _nullable({"type": "integer"}),
            "symbol": TEXT,
            "side": {"enum": ["Bid", "Ask"]},
            "price": D,
            "quantity": D,
            "quoteQuantity": D,
            "fee": D,
            "feeSymbol": TEXT,
            "isMaker": {"type": "boolean"},
            "timestamp": {
                "type": "string",
                "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$",
                "description": "ISO-8601 UTC, milliseconds, no zone suffix (as Backpack)",
            },
        }
    ),
    "Credited": _object({"asset": TEXT, "available": D, "locked": D}),
    "DepositAddress": _object({"address": TEXT, "blockchain": TEXT, "network": TEXT}),
    "Deposit": _object(
        {
            "id": {**TEXT, "description": "network:transactionHash"},
            "symbol": TEXT,
            "asset": TEXT,
            "source": {**TEXT, "description": "the network, in lower case (Backpack)"},
            "blockchain": TEXT,
            "network": TEXT,
            "quantity": D,
            "status": {"enum": DEPOSIT_STATUSES},
            "confirmations": {"type": "integer", "minimum": 0},
            "fromAddress": {"type": "null"},
            "toAddress": TEXT,
            "transactionHash": TEXT,
            "createdAt": ISO_MS,
            "updatedAt": ISO_MS,
        }
    ),
    "Withdrawal": _object(
        {
            "id": {"type": "integer", "minimum": 1},
            "clientId": _nullable({"type": "integer"}),
            "symbol": TEXT,
            "asset": TEXT,
            "blockchain": TEXT,
            "network": TEXT,
            "quantity": {**D, "description": "what arrives at the address"},
            "fee": {**D, "description": "locked with the quantity, on top of it"},
            "status": {"enum": WITHDRAWAL_STATUSES},
            "stage": {"enum": WITHDRAWAL_STAGES, "description": "the engine's finer status"},
            "toAddress": TEXT,
            "transactionHash": _nullable(TEXT),
            "isInternal": {"const": False},
            "triggerAt": {"type": "null"},
            "createdAt": ISO_MS,
            "updatedAt": ISO_MS,
        }
    ),
    # ---- accounts ----
    "Session": _object(
        {"userId": DIGITS, "token": {"type": "string", "description": "the bearer token"}}
    ),
    "ApiKey": _object(
        {
            "keyId": DIGITS,
            "publicKey": {"type": "string", "description": "base64 ED25519 public key"},
            "label": TEXT,
            "createdAt": MS,
            "revokedAt": _nullable(MS),
            "permissions": {"type": "array", "items": {"enum": ["read", "trade", "withdraw"]}},
            "ipAllowlist": {"type": "array", "items": {"type": "string"}},
        }
    ),
    "Health": _object(
        {
            "status": {"enum": ["ok", "unavailable"]},
            "engine": TEXT,
            "ledger": TEXT,
            "redis": TEXT,
        }
    ),
}
SCHEMAS["WithdrawalLimit"] = _object(
    {
        **SCHEMAS["Token"]["properties"],
        "withdrawnToday": {**D, "description": "asked over the last 24 hours, declines aside"},
        "maxWithdrawalQuantity": D,
    }
)
SCHEMAS["WithdrawalLimits"] = _object(
    {
        "symbol": TEXT,
        "asset": TEXT,
        "maxWithdrawalQuantity": {**D, "description": "the most on any of its networks"},
        "networks": {"type": "array", "items": _ref("WithdrawalLimit")},
    }
)
SCHEMAS["CreatedApiKey"] = _object(
    {
        **SCHEMAS["ApiKey"]["properties"],
        "secret": {
            "type": "string",
            "description": "base64 ED25519 private seed; only when the key was generated here",
        },
    },
    optional=("secret",),
)

# ---- request bodies -----------------------------------------------------------------------

_ONE_MARKET = [{"required": ["symbol"]}, {"required": ["market"]}]
_MARKET_FIELDS: Json = {
    "symbol": _ref("SymbolInput"),
    "market": {"description": "the spec's name for `symbol`; read only without a `symbol`"},
}
# Without a symbol the market is read, so it must be one; with one, it is ignored.
_MARKET_RULE: Json = {
    "if": {"properties": {"symbol": {"enum": ["", None]}}},
    "then": {"properties": {"market": _ref("SymbolInput")}},
}
_USER_FIELD: Json = {
    "userId": {
        "anyOf": [
            {"type": "integer", "minimum": 0},
            {"type": "string", "pattern": "^[0-9]*$"},
            {"type": "null"},
        ],
        "description": "optional; must be the authenticated user (else 403)",
    }
}
SCHEMAS["OrderRequest"] = {
    "type": "object",
    "description": (
        "One order, in either dialect: Backpack's `{symbol, side: Bid|Ask, orderType, ...}` "
        "or the spec's `{market, side: buy|sell, price, quantity}`. Names of sides, types, "
        "time in force and self-trade prevention are case-insensitive. Without `orderType` "
        "an order with a price is a limit order, one without a market order."
    ),
    "properties": {
        **_MARKET_FIELDS,
        "side": {"enum": ["Bid", "Ask", "buy", "sell"]},
        "orderType": _choice("Limit", "Market"),
        "price": _ref("DecimalInput"),
        "quantity": _ref("DecimalInput"),
        "quoteQuantity": {
            **_ref("DecimalInput"),
            "description": "a market order's budget in the quote asset",
        },
        "timeInForce": _choice("GTC", "IOC", "FOK"),
        "postOnly": {"anyOf": [{"type": "boolean"}, {"enum": ["true", "false"]}]},
        "clientId": _id_input(MAX_CLIENT_ID),
        "selfTradePrevention": _choice(
            "RejectTaker",
            "RejectMaker",
            "RejectBoth",
            "reject_taker",
            "cancel_maker",
            "cancel_both",
        ),
        # Conditional orders. With `triggerPrice` the order waits, locking nothing, until the
        # last trade price reaches it; the take-profit / stop-loss legs are created on the
        # other side for what the order filled, and one cancels the other.
        "triggerPrice": _ref("DecimalInput"),
        "triggerQuantity": {
            **_ref("DecimalInput"),
            "description": "a trigger order's quantity (instead of `quantity`)",
        },
        "triggerBy": _choice("LastPrice"),
        "takeProfitTriggerPrice": _ref("DecimalInput"),
        "takeProfitLimitPrice": {
            **_ref("DecimalInput"),
            "description": "without it the take-profit leg is a market order",
        },
        "takeProfitTriggerBy": _choice("LastPrice"),
        "stopLossTriggerPrice": _ref("DecimalInput"),
        "stopLossLimitPrice": {
            **_ref("DecimalInput"),
            "description": "without it the stop-loss leg is a market order",
        },
        "stopLossTriggerBy": _choice("LastPrice"),
        **_USER_FIELD,
    },
    "required": ["side"],
    "anyOf": _ONE_MARKET,
    **_MARKET_RULE,
}
SCHEMAS["OrderReference"] = {
    "type": "object",
    "description": "An order by `orderId` or `clientId`; the market is optional.",
    "properties": {
        "orderId": _ref("IdInput"),
        "clientId": _ref("IdInput"),
        **_MARKET_FIELDS,
        **_USER_FIELD,
    },
    "anyOf": [{"required": ["orderId"]}, {"required": ["clientId"]}],
    **_MARKET_RULE,
}
SCHEMAS["MarketFilter"] = {
    "type": "object",
    "description": "Every market, or the one named.",
    "properties": {**_MARKET_FIELDS, **_USER_FIELD},
    **_MARKET_RULE,
}
SCHEMAS["Onramp"] = {
    "type": "object",
    "properties": {
        "asset": {"type": "string", "minLength": 1, "examples": ["INR"]},
        "amount": {
            **_ref("DecimalInput"),
            "description": "positive, in whole units, at most the asset's decimals",
        },
        **_USER_FIELD,
    },
    "required": ["asset", "amount"],
}
_NAME_INPUT = {"type": ["string", "null"], "maxLength": 32}
SCHEMAS["WithdrawalRequest"] = {
    "type": "object",
    "description": (
        "Backpack's `{symbol, blockchain, quantity, address, clientId}` or the spec's "
        "`{asset, network, ...}`. The same `clientId` again is the same withdrawal."
    ),
    "properties": {
        "symbol": {**_NAME_INPUT, "description": "the asset (Backpack)"},
        "asset": {**_NAME_INPUT, "description": "the asset (the spec), without `symbol`"},
        "blockchain": {**_NAME_INPUT, "description": "the network (Backpack)"},
        "network": {**_NAME_INPUT, "description": "the network (the spec), without `blockchain`"},
        "quantity": {**_ref("DecimalInput"), "description": "what arrives; the fee is on top"},
        "address": {"type": "string", "minLength": 1, "maxLength": 128},
        "clientId": _id_input(MAX_CLIENT_ID),
        **_USER_FIELD,
    },
    "required": ["quantity", "address"],
    "allOf": [
        {"anyOf": [{"required": ["symbol"]}, {"required": ["asset"]}]},
        {"anyOf": [{"required": ["blockchain"]}, {"required": ["network"]}]},
    ],
}
SCHEMAS["Credentials"] = {
    "type": "object",
    "properties": {
        "email": {"type": "string", "format": "email", "maxLength": 254},
        "password": {"type": "string", "minLength": 8, "maxLength": 256},
    },
    "required": ["email", "password"],
}
SCHEMAS["NewApiKey"] = {
    "type": "object",
    "description": "With `publicKey`, registers it; without, generates a key pair.",
    "properties": {
        "label": {"type": "string", "maxLength": 64},
        "publicKey": {"type": "string", "description": "base64 of a 32-byte ED25519 key"},
        "permissions": {
            "type": "array",
            "items": {"enum": ["read", "trade", "withdraw"]},
            "description": "fixed for the key's life; default read and trade",
        },
        "ipAllowlist": {
            "type": "array",
            "items": {"type": "string"},
            "maxItems": 64,
            "description": "CIDR networks the key may sign from (IPv4, IPv6); default any",
        },
    },
}
SCHEMAS["RevokeApiKey"] = {
    "type": "object",
    "properties": {"keyId": _ref("IdInput")},
    "required": ["keyId"],
}

# ---- errors -------------------------------------------------------------------------------

_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": DIGITS}}
_ERRORS: dict[int, tuple[str, Json]] = {
    400: ("A malformed request, or a rejection by the engine (`code`, `details.reason`).", {}),
    401: ("No valid bearer token or signature (UNAUTHORIZED, INVALID_SIGNATURE).", {}),
    403: (
        "Authenticated, but not allowed (FORBIDDEN; `details.reason` MISSING_PERMISSION when "
        "the API key lacks the scope, IP_NOT_ALLOWED outside its allowlist).",
        {},
    ),
    404: ("No such order or key, or not the caller's (RESOURCE_NOT_FOUND).", {}),
    409: ("Conflicts with the current state (DUPLICATE_CLIENT_ID, TRADING_PAUSED, ...).", {}),
    413: ("The body is larger than the gateway accepts (PAYLOAD_TOO_LARGE).", {}),
    429: ("Over a rate limit (TOO_MANY_REQUESTS); see Retry-After.", _RETRY_AFTER),
    503: ("A backend is not answering (SERVICE_UNAVAILABLE); try again.", _RETRY_AFTER),
}
RESPONSES: dict[str, Json] = {
    str(status): {
        "description": description,
        "headers": headers,
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    for status, (description, headers) in _ERRORS.items()
}

# ---- operations ---------------------------------------------------------------------------

PUBLIC, PRIVATE, ACCOUNT, OPS = "public", "private", "account", "operations"
BEARER: Json = {"bearer": []}
SIGNED: Json = {"apiKey": [], "signature": [], "timestamp": []}
MARKET_DATA = (429, 503)
READ = (400, 401, 403, 503)
WRITE = (400, 401, 403, 413, 429, 503)
SPEC_ORDER = {"market": "TATA_INR", "side": "buy", "price": "10", "quantity": "1"}
BACKPACK_ORDER = {
    "symbol": "TATA_INR",
    "side": "Bid",
    "orderType": "Limit",
    "price": "10",
    "quantity": "1",
    "timeInForce": "GTC",
}


def _query(name: str, schema: Json, description: str, **extra: Any) -> Json:
    return {"name": name, "in": "query", "schema": schema, "description": description, **extra}


def _json(schema: Json) -> Json:
    return {"application/json": {"schema": schema}}


def _list(name: str) -> Json:
    return _json({"type": "array", "items": _ref(name)})


UINT = {"type": "integer", "minimum": 0}
ID = {**UINT, "maximum": MAX_ID}
MS_INPUT = {**UINT, "maximum": MAX_MS}
SYMBOL_TEXT = {"type": "string", "maxLength": 32}
SYMBOL = _query("symbol", SYMBOL_TEXT, "the market (Backpack)", example="TATA_INR")
MARKET = _query("market", SYMBOL_TEXT, "the market (the spec), when there is no `symbol`")
MARKETS = (SYMBOL, MARKET)
LIMIT = _query("limit", {**UINT, "maximum": 1000}, "at most this many")
USER_ID = _query("userId", UINT, "optional; must be the caller (else 403)")


class _Paths:
    """Collects operations; an operation's security follows from its tag and INSTRUCTIONS."""

    def __init__(self) -> None:
        self.paths: dict[str, dict[str, Json]] = {}

    def add(
        self,
        method: str,
        path: str,
        operation_id: str,
        summary: str,
        tag: str,
        ok: Json,
        *,
        errors: tuple[int, ...] = (),
        params: tuple[Json, ...] = (),
        body: Json | None = None,
        examples: Json | None = None,
        status: int = 200,
        description: str = "",
        body_required: bool = True,
        bearer_only: bool = False,
    ) -> None:
        responses: Json = {str(status): {"description": "success", "content": ok}}
        for error in errors:
            responses[str(error)] = {"$ref": f"#/components/responses/{error}"}
        op: Json = {
            "operationId": operation_id,
            "summary": summary,
            "tags": [tag],
            "responses": responses,
        }
        if description:
            op["description"] = description
        if params:
            op["parameters"] = list(params)
        if body is not None:
            media: Json = {"schema": body}
            if examples:
                media["examples"] = {name: {"value": v} for name, v in examples.items()}
            op["requestBody"] = {
                "required": body_required,
                "content": {"application/json": media},
            }
        instruction = INSTRUCTIONS.get((method.upper(), path))
        if instruction is not None:
            op["security"] = [BEARER, SIGNED, {**SIGNED, "window": []}]
            op["x-backpack-instruction"] = instruction
        elif tag == PRIVATE or bearer_only:
            op["security"] = [BEARER]
        self.paths.setdefault(path, {})[method] = op


STREAMS = "Streams"
WS_DESCRIPTION = (
    'Send `{"method": "SUBSCRIBE", "params": [streams], "id": any}` (or '
    "UNSUBSCRIBE). Streams: `depth`, `trade`, `ticker`, `bookTicker` as `depth.TATA_INR` or "
    "`depth@TATA_INR`; `kline.<1m|5m|15m|30m|1h|4h|1d|1w>.TATA_INR`; and the caller's "
    "`account.orderUpdate[.MARKET]` and `account.balanceUpdate`, which need `token` (the "
    "bearer token) or `signature` ([key, signature, timestamp, window], ED25519 over "
    "`instruction=subscribe&timestamp=..&window=..`) in the frame. Frames: `{stream, data}` "
    "with Backpack's payloads (times in microseconds); depth diffs carry `U`/`u` engine "
    "sequence ids: sync with `GET /api/v1/depth`'s `lastUpdateId`; a diff whose `U` is past "
    "its `u` restarts the chain after lost updates: fetch the depth again. Errors: `{id, error: "
    "{code, name, message}}` with codes 4000 INVALID_FRAME, 4001 UNKNOWN_METHOD, 4002 "
    "TOO_MANY_STREAMS, 4003 UNAUTHORIZED, 4004 INVALID_MARKET, 4005 TOO_MANY_CONNECTIONS "
    "(private streams: GATEWAY_WS_CONNECTIONS per user), 4006 INVALID_STREAM, 4007 "
    "UNAVAILABLE."
)
SSE_DESCRIPTION = (
    "The WebSocket frames as `text/event-stream` events whose id is the engine sequence "
    "number; reconnecting with `Last-Event-ID` replays the frames after it while the gateway "
    "still keeps them (the last 1000 per stream). Private streams take the bearer token."
)


def _paths() -> dict[str, dict[str, Json]]:
    """Every route, as a table: one `add` per route of public.py, private.py, accounts.py
    and app.py, in their order."""
    p = _Paths()
    add = p.add
    # fmt: off
    add("get", "/api/v1/status", "getStatus", "Exchange status", PUBLIC, _json(_ref("Status")))
    add("get", "/api/v1/time", "getTime", "Server time in ms", PUBLIC, _json(MS))
    add("get", "/api/v1/assets", "getAssets", "Listed assets", PUBLIC, _list("Asset"),
        errors=MARKET_DATA)
    add("get", "/api/v1/markets", "getMarkets", "Listed markets", PUBLIC, _list("Market"),
        errors=MARKET_DATA)
    add("get", "/api/v1/market", "getMarket", "One market", PUBLIC, _json(_ref("Market")),
        errors=(400, *MARKET_DATA), params=MARKETS)
    add("get", "/api/v1/securities", "getSecurities", "Tokenized securities: none", PUBLIC,
        _json({"type": "array", "maxItems": 0}))
    add("get", "/api/v1/depth", "getDepth", "Order book depth", PUBLIC, _json(_ref("Depth")),
        errors=(400, *MARKET_DATA), params=(*MARKETS, LIMIT))
    add("get", "/api/v1/trades", "getTrades", "Recent trades, newest first", PUBLIC,
        _list("Trade"), errors=(400, *MARKET_DATA), params=(*MARKETS, LIMIT))
    add("get", "/api/v1/klines", "getKlines", "Candles", PUBLIC, _list("Kline"),
        errors=(400, *MARKET_DATA), params=(
            *MARKETS,
            _query("interval", {"enum": list(INTERVALS)}, "candle width", required=True),
            _query("startTime", UINT, "seconds since the epoch"),
            _query("endTime", UINT, "seconds since the epoch; after startTime"),
            LIMIT,
        ))
    for path, operation_id in (("/api/v1/ticker", "getTicker"),
                               ("/api/v1/ticker/24hr", "getTicker24hr")):
        add("get", path, operation_id, "The last 24 hours of one market", PUBLIC,
            _json(_ref("Ticker")), errors=(400, *MARKET_DATA), params=MARKETS)
    add("get", "/api/v1/tickers", "getTickers", "The last 24 hours of every market", PUBLIC,
        _list("Ticker"), errors=MARKET_DATA)

    add("get", "/api/v1/capital", "getCapital", "Balances of the caller", PRIVATE,
        _json(_ref("Capital")), errors=READ, params=(USER_ID,))
    add("post", "/api/v1/order", "placeOrder", "Place an order", PRIVATE, _json(_ref("Order")),
        errors=(*WRITE, 409), body=_ref("OrderRequest"),
        examples={"spec": SPEC_ORDER, "backpack": BACKPACK_ORDER})
    add("post", "/api/v1/orders", "placeOrders", f"Place up to {MAX_BATCH_ORDERS} orders",
        PRIVATE, _list("OrderResult"), errors=WRITE,
        body={"type": "array", "items": _ref("OrderRequest"), "minItems": 1,
              "maxItems": MAX_BATCH_ORDERS},
        examples={"batch": [SPEC_ORDER, BACKPACK_ORDER]},
        description="One result per order, in order: the order, or its error body. "
        "The batch counts once against the order rate limit.")
    add("get", "/api/v1/order", "getOrder", "One open order of the caller", PRIVATE,
        _json(_ref("Order")), errors=(*READ, 404), params=(
            _query("orderId", ID, "the order's id; this or clientId"),
            _query("clientId", ID, "the client's id of the order"),
            *MARKETS,
            USER_ID,
        ))
    add("delete", "/api/v1/order", "cancelOrder", "Cancel an order", PRIVATE,
        _json(_ref("Order")), errors=(*WRITE, 404, 409), body=_ref("OrderReference"),
        examples={"backpack": {"symbol": "TATA_INR", "orderId": "1"}})
    for path, operation_id in (("/api/v1/orders", "getOpenOrders"),
                               ("/api/v1/openOrders", "getOpenOrdersBinanceStyle"),
                               ("/api/v1/order/open", "getOpenOrdersSpec")):
        add("get", path, operation_id, "Open orders of the caller", PRIVATE, _list("Order"),
            errors=READ, params=(*MARKETS, USER_ID))
    add("delete", "/api/v1/orders", "cancelOpenOrders", "Cancel the caller's open orders",
        PRIVATE, _list("Order"), errors=(*WRITE, 409), body=_ref("MarketFilter"),
        examples={"one market": {"symbol": "TATA_INR"}, "every market": {}},
        body_required=False)
    add("get", "/wapi/v1/history/orders", "getOrderHistory", "Orders of the caller, newest first",
        PRIVATE, _list("Order"), errors=READ, params=(
            *MARKETS,
            _query("orderId", {**ID, "maximum": MAX_ID - 1}, "only this order"),
            _query("status", {"enum": ORDER_STATUSES}, "only this status; any case"),
            LIMIT,
            USER_ID,
        ))
    add("get", "/wapi/v1/history/fills", "getFillHistory", "Fills of the caller, newest first",
        PRIVATE, _list("UserFill"), errors=READ, params=(
            *MARKETS,
            _query("from", MS_INPUT, "milliseconds since the epoch"),
            _query("to", MS_INPUT, "milliseconds since the epoch"),
            _query("orderId", ID, "only fills of this order"),
            LIMIT,
            USER_ID,
        ))
    add("post", "/api/v1/onramp", "onramp", "Demo faucet: credit the caller", PRIVATE,
        _json(_ref("Credited")), errors=WRITE, body=_ref("Onramp"),
        examples={"rupees": {"asset": "INR", "amount": "1000"}},
        description="Up to the configured cap per user and asset (400 FAUCET_LIMIT); "
        "403 where the faucet is disabled.")

    asset = (_query("symbol", SYMBOL_TEXT, "the asset (Backpack)", example="USDT"),
             _query("asset", SYMBOL_TEXT, "the asset (the spec), without `symbol`"))
    network = (_query("blockchain", SYMBOL_TEXT, "the network (Backpack)", example="Ethereum"),
               _query("network", SYMBOL_TEXT, "the network (the spec), without `blockchain`"))
    history = (
        _query("from", MS_INPUT, "created at or after, ms since the epoch"),
        _query("to", MS_INPUT, "created before, ms since the epoch"),
        _query("endTime", MS_INPUT, "the same as `to` (ccxt's fetchDeposits), without `to`"),
        LIMIT,
        _query("offset", {**UINT, "maximum": 2**31 - 1}, "skip this many, newest first"),
        USER_ID,
    )
    for prefix, dialect in (("/wapi/v1/capital", ""), ("/api/v1/capital", "Spec")):
        add("get", f"{prefix}/deposit/address", f"getDepositAddress{dialect}",
            "The caller's deposit address on a network", PRIVATE,
            _json(_ref("DepositAddress")), errors=READ, params=(*network, *asset, USER_ID),
            description="One address per network: every asset on it arrives there. "
            "400 (`details.reason` UNKNOWN_NETWORK, NETWORK_DISABLED).")
        add("get", f"{prefix}/deposits", f"getDeposits{dialect}",
            "Deposits of the caller, newest first", PRIVATE, _list("Deposit"), errors=READ,
            params=history)
        add("get", f"{prefix}/withdrawals", f"getWithdrawals{dialect}",
            "Withdrawals of the caller, newest first", PRIVATE, _list("Withdrawal"),
            errors=READ, params=history)
        add("post", f"{prefix}/withdrawals", f"requestWithdrawal{dialect}",
            "Request a withdrawal: quantity + fee are locked at once", PRIVATE,
            _json(_ref("Withdrawal")), errors=(*WRITE, 409), body=_ref("WithdrawalRequest"),
            examples={"backpack": {"symbol": "USDT", "blockchain": "Ethereum",
                                   "quantity": "10", "address": "0x" + "0b" * 20}},
            description="Needs the `withdraw` scope of an API key. 400 with `details.reason` "
            "INSUFFICIENT_FUNDS, BELOW_MIN_WITHDRAWAL, ABOVE_MAX_WITHDRAWAL, "
            "WITHDRAWAL_LIMIT, INVALID_ADDRESS, UNKNOWN_NETWORK, NETWORK_DISABLED, "
            "INVALID_AMOUNT; 409 DUPLICATE_CLIENT_ID for a clientId used with other facts.")
    add("get", "/api/v1/account/limits/withdrawal", "getWithdrawalLimits",
        "How much of an asset the caller can withdraw now, per network", PRIVATE,
        _json(_ref("WithdrawalLimits")), errors=READ, params=(*asset, *network, USER_ID))

    add("post", "/api/v1/auth/signup", "signup", "Create a user; returns a bearer token",
        ACCOUNT, _json(_ref("Session")), status=201, errors=(400, 409, 413, 429, 503),
        body=_ref("Credentials"))
    add("post", "/api/v1/auth/login", "login", "Log in; returns a bearer token", ACCOUNT,
        _json(_ref("Session")), errors=(400, 401, 413, 429, 503), body=_ref("Credentials"))
    keys = "With the bearer token only: an API key cannot manage keys (403)."
    add("post", "/api/v1/auth/apikeys", "createApiKey", "Register or generate an API key",
        ACCOUNT, _json(_ref("CreatedApiKey")), status=201,
        errors=(400, 401, 403, 404, 409, 413, 503), body=_ref("NewApiKey"), description=keys,
        body_required=False, bearer_only=True)
    add("get", "/api/v1/auth/apikeys", "listApiKeys", "API keys of the caller", ACCOUNT,
        _list("ApiKey"), errors=(401, 403, 503), description=keys, bearer_only=True)
    add("delete", "/api/v1/auth/apikeys", "revokeApiKey", "Revoke an API key", ACCOUNT,
        _json(_ref("ApiKey")), errors=(400, 401, 403, 404, 413, 503), body=_ref("RevokeApiKey"),
        description=keys, bearer_only=True)

    add("get", "/ws", "websocket", "Live market data over WebSocket (also at /)", STREAMS,
        {"application/json": {"schema": TEXT}}, status=101, description=WS_DESCRIPTION)
    add("get", "/api/v1/stream", "stream", "Live market data as Server-Sent Events", STREAMS,
        {"text/event-stream": {"schema": TEXT}}, errors=(400, 401), params=(
            _query("topics", {"type": "string", "maxLength": 2000},
                   "comma-separated streams, as over WebSocket", required=True,
                   example="depth@TATA_INR,trade.TATA_INR"),
        ), description=SSE_DESCRIPTION)
    add("get", "/health", "health", "Ready when the engine, the ledger and Redis answer", OPS,
        _json(_ref("Health")))
    add("get", "/metrics", "metrics", "Prometheus metrics", OPS, {"text/plain": {"schema": TEXT}})
    add("get", DOC_PATH, "openapi", "This document", OPS, _json({"type": "object"}))
    add("get", DOCS_PATH, "docs", "This document, as a page", OPS, {"text/html": {"schema": TEXT}})
    # fmt: on
    for path in ("/ws", "/api/v1/stream"):
        p.paths[path]["get"]["x-streaming"] = True  # never ends: no request/response checks
    p.paths["/health"]["get"]["responses"]["503"] = {
        "description": "a backend is down; the same body says which",
        "content": _json(_ref("Health")),
    }
    return p.paths


def build() -> Json:
    """The whole document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Exchange REST API",
            "version": "1",
            "description": (
                "A spot exchange, in two dialects: the project's spec and Backpack's "
                "(what ccxt speaks). Amounts are decimal strings. Private operations take a "
                "bearer token (`POST /api/v1/auth/login`) or a request signed the Backpack "
                "way: ED25519 over `instruction=<x-backpack-instruction>&<params sorted by "
                "key>&timestamp=<X-Timestamp>&window=<X-Window>`, the window at most "
                f"{MAX_WINDOW_MS} ms. Every error is `{{code, message, error: {{code, "
                "message, details}}`."
            ),
        },
        "tags": [
            {"name": PUBLIC, "description": "market data; no authentication"},
            {"name": PRIVATE, "description": "the caller's orders, balances and history"},
            {"name": ACCOUNT, "description": "sign-up, log-in and API keys"},
            {"name": STREAMS, "description": "live market data: WebSocket and SSE"},
            {"name": OPS, "description": "health, metrics and this document"},
            {"name": binance_openapi.TAG, "description": binance_openapi.TAG_DESCRIPTION},
        ],
        "paths": {**_paths(), **binance_openapi.paths()},
        "components": {
            "schemas": SCHEMAS,
            "responses": RESPONSES,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "binanceApiKey": binance_openapi.SECURITY_SCHEME,
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "base64 ED25519 public key",
                },
                "signature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Signature",
                    "description": "base64 ED25519 signature of the signing string",
                },
                "timestamp": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Timestamp",
                    "description": "milliseconds since the epoch; within the window of now",
                },
                "window": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Window",
                    "description": (
                        f"validity in ms, {DEFAULT_WINDOW_MS} when absent, at most {MAX_WINDOW_MS}"
                    ),
                },
            },
        },
    }


DOCUMENT = build()
_DOCUMENT_JSON = orjson.dumps(DOCUMENT)


def render_docs(document: Json) -> str:
    """A self-contained page listing every operation: no script, nothing fetched."""
    e = html.escape
    rows = []
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            params = [q["name"] for q in op.get("parameters", [])]
            if "requestBody" in op:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                params.append("JSON body: " + schema.get("$ref", "array").rsplit("/", 1)[-1])
            auth = " or ".join(" + ".join(req) for req in op.get("security", [])) or "none"
            rows.append(
                f"<tr><td><b>{e(method.upper())}</b></td><td><code>{e(path)}</code></td>"
                f"<td>{e(op['summary'])}</td><td>{e(', '.join(params))}</td>"
                f"<td>{e(auth)}</td><td>{e(' '.join(op['responses']))}</td></tr>"
            )
    info = document["info"]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{e(info['title'])}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
        "</style></head><body>"
        f"<h1>{e(info['title'])}</h1><p>{e(info['description'])}</p>"
        f"<p>The full document: <a href='{DOC_PATH}'>{DOC_PATH}</a> (OpenAPI 3.1).</p>"
        "<table><tr><th>method</th><th>path</th><th>summary</th><th>parameters</th>"
        "<th>authentication</th><th>statuses</th></tr>" + "".join(rows) + "</table>"
        "</body></html>"
    )


_DOCS_HTML = render_docs(DOCUMENT)

routes = web.RouteTableDef()


@routes.get(DOC_PATH)
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=_DOCUMENT_JSON, content_type="application/json")


@routes.get(DOCS_PATH)
async def docs(request: web.Request) -> web.Response:
    return web.Response(text=_DOCS_HTML, content_type="text/html")
