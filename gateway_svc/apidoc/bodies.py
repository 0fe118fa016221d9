"""The document's request bodies. Each reads either dialect: Backpack's names or the spec's."""

from __future__ import annotations

from gateway_svc.apidoc.schemas import Json, id_input, ref
from gateway_svc.dialect import MAX_CLIENT_ID


def _choice(*names: str) -> Json:
    """A name the code reads case-insensitively; empty or null mean the default."""
    return {"enum": [*names, "", None], "description": "any case; empty or null: the default"}


_NAME_INPUT = {"type": ["string", "null"], "maxLength": 32}
_ONE_MARKET = [{"required": ["symbol"]}, {"required": ["market"]}]
_MARKET_FIELDS: Json = {
    "symbol": ref("SymbolInput"),
    "market": {"description": "the spec's name for `symbol`; read only without a `symbol`"},
}
# Without a symbol the market is read, so it must be one; with one, it is ignored.
_MARKET_RULE: Json = {
    "if": {"properties": {"symbol": {"enum": ["", None]}}},
    "then": {"properties": {"market": ref("SymbolInput")}},
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
BODIES: dict[str, Json] = {
    "OrderRequest": {
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
            "price": ref("DecimalInput"),
            "quantity": ref("DecimalInput"),
            "quoteQuantity": {
                **ref("DecimalInput"),
                "description": "a market order's budget in the quote asset",
            },
            "timeInForce": _choice("GTC", "IOC", "FOK"),
            "postOnly": {"anyOf": [{"type": "boolean"}, {"enum": ["true", "false"]}]},
            "clientId": id_input(MAX_CLIENT_ID),
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
            "triggerPrice": ref("DecimalInput"),
            "triggerQuantity": {
                **ref("DecimalInput"),
                "description": "a trigger order's quantity (instead of `quantity`)",
            },
            "triggerBy": _choice("LastPrice"),
            "takeProfitTriggerPrice": ref("DecimalInput"),
            "takeProfitLimitPrice": {
                **ref("DecimalInput"),
                "description": "without it the take-profit leg is a market order",
            },
            "takeProfitTriggerBy": _choice("LastPrice"),
            "stopLossTriggerPrice": ref("DecimalInput"),
            "stopLossLimitPrice": {
                **ref("DecimalInput"),
                "description": "without it the stop-loss leg is a market order",
            },
            "stopLossTriggerBy": _choice("LastPrice"),
            **_USER_FIELD,
        },
        "required": ["side"],
        "anyOf": _ONE_MARKET,
        **_MARKET_RULE,
    },
    "OrderReference": {
        "type": "object",
        "description": "An order by `orderId` or `clientId`; the market is optional.",
        "properties": {
            "orderId": ref("IdInput"),
            "clientId": ref("IdInput"),
            **_MARKET_FIELDS,
            **_USER_FIELD,
        },
        "anyOf": [{"required": ["orderId"]}, {"required": ["clientId"]}],
        **_MARKET_RULE,
    },
    "MarketFilter": {
        "type": "object",
        "description": "Every market, or the one named.",
        "properties": {**_MARKET_FIELDS, **_USER_FIELD},
        **_MARKET_RULE,
    },
    "Onramp": {
        "type": "object",
        "properties": {
            "asset": {"type": "string", "minLength": 1, "examples": ["INR"]},
            "amount": {
                **ref("DecimalInput"),
                "description": "positive, in whole units, at most the asset's decimals",
            },
            **_USER_FIELD,
        },
        "required": ["asset", "amount"],
    },
    "WithdrawalRequest": {
        "type": "object",
        "description": (
            "Backpack's `{symbol, blockchain, quantity, address, clientId}` (and `memo`) or the "
            "spec's `{asset, network, ...}`. The same `clientId` again is the same withdrawal."
        ),
        "properties": {
            "symbol": {**_NAME_INPUT, "description": "the asset (Backpack)"},
            "asset": {**_NAME_INPUT, "description": "the asset (the spec), without `symbol`"},
            "blockchain": {**_NAME_INPUT, "description": "the network (Backpack)"},
            "network": {
                **_NAME_INPUT,
                "description": "the network (the spec), without `blockchain`",
            },
            "quantity": {**ref("DecimalInput"), "description": "what arrives; the fee is on top"},
            "address": {"type": "string", "minLength": 1, "maxLength": 128},
            "clientId": id_input(MAX_CLIENT_ID),
            "memo": {
                "type": "string",
                "pattern": "^[ -~]{0,64}$",
                "description": "a chain's memo or destination tag, for custody to send",
            },
            **_USER_FIELD,
        },
        "required": ["quantity", "address"],
        "allOf": [
            {"anyOf": [{"required": ["symbol"]}, {"required": ["asset"]}]},
            {"anyOf": [{"required": ["blockchain"]}, {"required": ["network"]}]},
        ],
    },
    "Credentials": {
        "type": "object",
        "properties": {
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "password": {"type": "string", "minLength": 8, "maxLength": 256},
        },
        "required": ["email", "password"],
    },
    "NewApiKey": {
        "type": "object",
        "description": "With `publicKey`, registers it; without, generates a key pair.",
        "properties": {
            "label": {"type": "string", "maxLength": 64},
            "publicKey": {"type": "string", "description": "base64 of a 32-byte ED25519 key"},
            "type": {
                "enum": ["ed25519", "hmac"],
                "description": "hmac: an HMAC-SHA256 key for Binance clients (no publicKey)",
            },
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
    },
    "RevokeApiKey": {
        "type": "object",
        "properties": {"keyId": ref("IdInput")},
        "required": ["keyId"],
    },
}
