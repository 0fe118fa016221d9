"""The document's schemas of values and answers, and the helpers that write schemas.

Every answer is an object with all its fields present and nothing else (`_object`), so a
field the code adds or drops without the document fails the schemathesis test. Both
dialects are described where they differ: a market is `symbol` (Backpack) or `market` (the
spec), a side `Bid`/`Ask` or `buy`/`sell`. Answers carry the fields both kinds of client
read. Every error has the one body of errors.py.
"""

from __future__ import annotations

from typing import Any

from gateway_svc.capital import DEPOSIT_STATUSES, WITHDRAWAL_STAGES, WITHDRAWAL_STATUSES

Json = dict[str, Any]

MAX_ID = 2**63 - 1
ORDER_STATUSES = [
    "New", "PartiallyFilled", "Filled", "Cancelled", "Expired", "Rejected", "TriggerPending",
    "TriggerFailed",
]  # fmt: skip


def ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Json) -> Json:
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
D = ref("Decimal")
ISO_MS = {
    "type": "string",
    "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$",
    "description": "ISO-8601 UTC, milliseconds, no zone suffix (as Backpack)",
}


def id_input(maximum: int) -> Json:
    """An id in a JSON body: a number or a string of digits; empty, null or 0 mean none."""
    return {
        "anyOf": [
            {"type": "integer", "minimum": 0, "maximum": maximum},
            {"type": "string", "pattern": f"^[0-9]{{0,{len(str(maximum))}}}$"},
            {"type": "null"},
        ],
    }


# The conditional-order fields of an order view: null on an order that is none.
_ORDER_CONDITIONS: Json = {
    "triggerPrice": nullable(D),
    "triggerQuantity": nullable({**D, "description": "a trigger order's quantity"}),
    "triggerBy": nullable({"enum": ["LastPrice"]}),
    "triggeredAt": nullable(MS),
    "takeProfitTriggerPrice": nullable(D),
    "takeProfitLimitPrice": nullable(D),
    "takeProfitTriggerBy": nullable({"enum": ["LastPrice"]}),
    "stopLossTriggerPrice": nullable(D),
    "stopLossLimitPrice": nullable(D),
    "stopLossTriggerBy": nullable({"enum": ["LastPrice"]}),
    "relatedOrderId": nullable({**DIGITS, "description": "the other leg of a TP/SL pair"}),
    "parentOrderId": nullable({**DIGITS, "description": "the order a TP/SL leg is for"}),
    "triggerFailure": nullable(
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
    "IdInput": id_input(MAX_ID),
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
            "tokens": {"type": "array", "items": ref("Token"), "description": "its networks"},
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
            "maximumWithdrawal": nullable(D),
            "withdrawalFee": {**D, "description": "charged on top of the quantity"},
            "depositConfirmations": {"type": "integer", "minimum": 0},
            "approvalThreshold": nullable(
                {**D, "description": "a withdrawal above it waits for an operator"}
            ),
            "dailyLimit": nullable({**D, "description": "per user over 24 hours"}),
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
            "firstPrice": nullable(D),
            "lastPrice": nullable(D),
            "high": nullable(D),
            "low": nullable(D),
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
        "additionalProperties": ref("Balance"),
    },
    "OrderFill": _object({"price": D, "qty": D, "quantity": D, "tradeId": DIGITS}),
    "Order": _object(
        {
            "id": DIGITS,
            "orderId": DIGITS,
            "clientId": nullable({"type": "integer"}),
            "symbol": TEXT,
            "market": TEXT,
            "side": {"enum": ["Bid", "Ask"]},
            "orderType": {"enum": ["Limit", "Market"]},
            "timeInForce": {"enum": ["GTC", "IOC", "FOK"]},
            "selfTradePrevention": {"enum": ["RejectTaker", "RejectMaker", "RejectBoth"]},
            "postOnly": {"type": "boolean"},
            "price": nullable(D),
            "quantity": nullable(D),
            "quoteQuantity": nullable(D),
            "executedQuantity": D,
            "executedQty": D,
            "executedQuoteQuantity": D,
            "status": {"enum": ORDER_STATUSES},
            "createdAt": MS,
            "userId": DIGITS,
            **_ORDER_CONDITIONS,
            "fills": {
                "type": "array",
                "items": ref("OrderFill"),
                "description": "only in the answer to placing the order",
            },
        },
        optional=("fills",),
    ),
    "OrderResult": {"anyOf": [ref("Order"), ref("Error")]},
    "UserFill": _object(
        {
            "tradeId": DIGITS,
            "orderId": DIGITS,
            "clientId": nullable({"type": "integer"}),
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
            "clientId": nullable({"type": "integer"}),
            "memo": nullable({**TEXT, "description": "for custody to send with it"}),
            "symbol": TEXT,
            "asset": TEXT,
            "blockchain": TEXT,
            "network": TEXT,
            "quantity": {**D, "description": "what arrives at the address"},
            "fee": {**D, "description": "locked with the quantity, on top of it"},
            "status": {"enum": WITHDRAWAL_STATUSES},
            "stage": {"enum": WITHDRAWAL_STAGES, "description": "the engine's finer status"},
            "toAddress": TEXT,
            "transactionHash": nullable(TEXT),
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
            "publicKey": {
                "type": "string",
                "description": "base64 ED25519 public key, or an HMAC key's API key",
            },
            "label": TEXT,
            "createdAt": MS,
            "revokedAt": nullable(MS),
            "permissions": {"type": "array", "items": {"enum": ["read", "trade", "withdraw"]}},
            "ipAllowlist": {"type": "array", "items": {"type": "string"}},
            "type": {"enum": ["ed25519", "hmac"]},
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
        "networks": {"type": "array", "items": ref("WithdrawalLimit")},
    }
)
SCHEMAS["CreatedApiKey"] = _object(
    {
        **SCHEMAS["ApiKey"]["properties"],
        "secret": {
            "type": "string",
            "description": (
                "base64 ED25519 private seed when the key was generated here; an HMAC key's "
                "secret (64 letters and digits). Shown once"
            ),
        },
        "apiKey": {"type": "string", "description": "an HMAC key's API key (X-MBX-APIKEY)"},
    },
    optional=("secret", "apiKey"),
)
