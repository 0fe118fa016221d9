"""Backpack's wire vocabulary, which the gateway serves and every client speaks.

A request signed the Backpack way carries an ED25519 signature over

    instruction=<name>&<params sorted by key as k=v>&timestamp=<ts>&window=<window>

where params are the query (GET) or the JSON body (POST, DELETE); a batch body (a list)
signs `instruction=orderExecute&<order>&` once per order. ccxt URL-encodes values and
other clients do not, so both spellings are signing strings. The gateway verifies them
(gateway_svc/auth.py); the chaos suite's client signs with them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from exchange.common.v1 import common_pb2 as cpb

# (method, path) -> Backpack instruction name.
INSTRUCTIONS: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/capital"): "balanceQuery",
    ("GET", "/api/v1/order"): "orderQuery",
    ("POST", "/api/v1/order"): "orderExecute",
    ("DELETE", "/api/v1/order"): "orderCancel",
    ("GET", "/api/v1/orders"): "orderQueryAll",
    ("POST", "/api/v1/orders"): "orderExecute",
    ("DELETE", "/api/v1/orders"): "orderCancelAll",
    ("GET", "/api/v1/openOrders"): "orderQueryAll",
    ("GET", "/api/v1/order/open"): "orderQueryAll",
    ("GET", "/wapi/v1/history/orders"): "orderHistoryQueryAll",
    ("GET", "/wapi/v1/history/fills"): "fillHistoryQueryAll",
    ("POST", "/api/v1/onramp"): "onramp",
    # capital, at Backpack's paths and the spec's
    ("GET", "/wapi/v1/capital/deposit/address"): "depositAddressQuery",
    ("GET", "/api/v1/capital/deposit/address"): "depositAddressQuery",
    ("GET", "/wapi/v1/capital/deposits"): "depositQueryAll",
    ("GET", "/api/v1/capital/deposits"): "depositQueryAll",
    ("GET", "/wapi/v1/capital/withdrawals"): "withdrawalQueryAll",
    ("GET", "/api/v1/capital/withdrawals"): "withdrawalQueryAll",
    ("POST", "/wapi/v1/capital/withdrawals"): "withdraw",
    ("POST", "/api/v1/capital/withdrawals"): "withdraw",
    ("GET", "/api/v1/account/limits/withdrawal"): "maxWithdrawalQuantity",
}


STATUS_NAMES = {
    cpb.ORDER_STATUS_NEW: "New",
    cpb.ORDER_STATUS_PARTIALLY_FILLED: "PartiallyFilled",
    cpb.ORDER_STATUS_FILLED: "Filled",
    cpb.ORDER_STATUS_CANCELLED: "Cancelled",
    cpb.ORDER_STATUS_EXPIRED: "Expired",
    cpb.ORDER_STATUS_REJECTED: "Rejected",
    cpb.ORDER_STATUS_TRIGGER_PENDING: "TriggerPending",
    cpb.ORDER_STATUS_TRIGGER_FAILED: "TriggerFailed",
}


def signing_strings(instruction: str, params: Any, timestamp: str, window: str) -> list[bytes]:
    """The strings a client may have signed: values URL-encoded (ccxt) or raw."""
    return [_message(instruction, params, timestamp, window, e) for e in (_quoted, _raw)]


def signing_candidates(
    instruction: str, params: Any, timestamp: str, window: str
) -> Iterator[bytes]:
    """The URL-encoded string, then the raw one when it is different: lazily."""
    raw = _message(instruction, params, timestamp, window, _raw)
    if _plain(raw, params):
        yield raw  # nothing to encode: it is the URL-encoded string too
        return
    quoted = _message(instruction, params, timestamp, window, _quoted)
    yield quoted
    if raw != quoted:
        yield raw


# The characters of a signed string in which no value needs encoding: what quote(safe="")
# leaves alone, and the separators.
_PLAIN = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-=&"


def _plain(raw: bytes, params: Any) -> bool:
    """True when `raw` holds only plain characters and no more separators than its pairs
    make (so no value holds a `&` or `=`): URL-encoding would change nothing. Checked on the
    whole string at once, which costs far less than a check per value (a batch has 700)."""
    if raw.translate(None, _PLAIN):
        return False
    if isinstance(params, list):
        if not all(isinstance(p, dict) for p in params):
            return False
        pairs = sum(len(p) for p in params)
        ampersands, equals = pairs + len(params) + 1, pairs + len(params) + 2
    else:
        pairs = len(params) if params else 0
        ampersands, equals = pairs + 2, pairs + 3
    return raw.count(b"&") == ampersands and raw.count(b"=") == equals


def _message(instruction: str, params: Any, timestamp: str, window: str, encode: Any) -> bytes:
    tail = f"timestamp={timestamp}&window={window}"
    if isinstance(params, list):
        parts = [f"instruction={instruction}&{_pairs(p, encode)}&" for p in params]
        return ("".join(parts) + tail).encode()
    if params:
        return f"instruction={instruction}&{_pairs(params, encode)}&{tail}".encode()
    return f"instruction={instruction}&{tail}".encode()


def _pairs(params: Mapping[str, Any], encode: Any) -> str:
    if encode is _raw:  # the common spelling: one call less per value
        return "&".join([f"{k}={_text(params[k])}" for k in sorted(params)])
    return "&".join([f"{k}={encode(_text(params[k]))}" for k in sorted(params)])


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# What quote(safe="") leaves alone: most values (prices, symbols, ids) need no encoding.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch


def _quoted(text: str) -> str:
    return text if _UNRESERVED(text) else quote(text, safe="")


def _raw(text: str) -> str:
    return text
