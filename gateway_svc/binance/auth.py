"""Binance-signed requests: `X-MBX-APIKEY`, and `timestamp`, `recvWindow` and `signature`
among the parameters, the signature over the exact query string and body as sent (their
concatenation, without the `signature` pair itself). Every refusal is a 401 (Binance answers
some with 400; its clients read the code, -1021 or -1022, not the status).

A key is an ED25519 key the user already has (its base64 public key is the API key, and the
signature is base64), or an HMAC-SHA256 key made for Binance clients (a 64-character API
key; the signature is the hex HMAC of the same text under its secret). An ED25519 signature
is checked before the key is looked up, so garbage costs no look-up; an HMAC one needs the
key's secret first. Every check after the signature (revocation, scopes, replay, rate
limits) is the one `context.caller` makes for every dialect.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Mapping
from urllib.parse import unquote

from aiohttp import web

from gateway_svc.auth import ApiKeys, Caller
from gateway_svc.binance.dialect import read_params
from gateway_svc.errors import ApiError, unauthorized
from tradekit.binance import HMAC_API_KEY, hmac_signature

HEADER = "X-MBX-APIKEY"
DEFAULT_WINDOW_MS = 5_000
MAX_WINDOW_MS = 60_000
MAX_AHEAD_MS = 1_000  # Binance refuses a timestamp more than 1 s in the server's future


def _outside_window(message: str) -> ApiError:
    return ApiError(401, "TIMESTAMP_OUTSIDE_WINDOW", message)


def _bad_signature(message: str) -> ApiError:
    return ApiError(401, "INVALID_SIGNATURE", message)


def signed_text(query: str, body: str) -> tuple[bytes, str]:
    """The text the client signed and the signature it sent (still URL-encoded)."""
    signature = ""
    parts = []
    for text in (query, body):
        kept = []
        for pair in text.split("&") if text else []:
            if pair.startswith("signature="):
                if signature:
                    raise _bad_signature("Duplicate signature parameter.")
                signature = pair[len("signature=") :]
            else:
                kept.append(pair)
        parts.append("&".join(kept))
    return "".join(parts).encode(), signature


def _millis(params: Mapping[str, str], field: str, default: int) -> int:
    value = params.get(field, "")
    if value == "":
        return default
    if not (value.isascii() and value.isdigit() and len(value) <= 20):
        raise ApiError(401, "INVALID_CLIENT_REQUEST", f"Illegal value for '{field}'.")
    return int(value)


async def verify(
    api_key: str,
    params: Mapping[str, str],
    message: bytes,
    signature: str,
    keys: ApiKeys,
    now_ms: int | None = None,
) -> Caller:
    """The caller of a Binance-signed request; ApiError -1021, -1022, -2014, -2015 else.
    The replay check and the rate limit are left to the caller (`Caller.signature`)."""
    if "timestamp" not in params:
        raise ApiError(
            401,
            "MANDATORY_PARAM_MISSING",
            "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        )
    if not signature:
        raise ApiError(
            401,
            "MANDATORY_PARAM_MISSING",
            "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
        )
    timestamp = _millis(params, "timestamp", 0)
    window = _millis(params, "recvWindow", DEFAULT_WINDOW_MS)
    if not 0 < window <= MAX_WINDOW_MS:
        raise ApiError(
            401, "INVALID_CLIENT_REQUEST", f"recvWindow must be from 1 to {MAX_WINDOW_MS}."
        )
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if timestamp > now + MAX_AHEAD_MS:
        raise _outside_window("Timestamp for this request was 1000ms ahead of the server's time.")
    if now - timestamp > window:
        raise _outside_window("Timestamp for this request is outside of the recvWindow.")
    if HMAC_API_KEY(api_key):
        return await _verify_hmac(api_key, message, signature, window, keys)
    try:
        verifier = keys.verifier(api_key)
    except (binascii.Error, ValueError):
        raise ApiError(401, "BAD_API_KEY_FORMAT", "API-key format invalid.") from None
    try:
        raw = base64.b64decode(_unquote(signature), validate=True)
    except (binascii.Error, ValueError):
        raise _bad_signature("Signature for this request is not valid.") from None
    if not await keys.verify(verifier, raw, iter((message,))):
        raise _bad_signature("Signature for this request is not valid.")
    key = await keys.lookup(api_key)
    if key is None or key.revoked_at_us:
        raise unauthorized("Invalid API-key, IP, or permissions for action.")
    return Caller(key.user_id, "api_key", signature, window, key)


async def _verify_hmac(
    api_key: str, message: bytes, signature: str, window: int, keys: ApiKeys
) -> Caller:
    key = await keys.lookup(api_key)
    secret = keys.hmac_secret(key) if key is not None and not key.revoked_at_us else None
    if key is None or secret is None:
        raise unauthorized("Invalid API-key, IP, or permissions for action.")
    expected = hmac_signature(secret, message)
    # As bytes: compare_digest refuses a str that is not ASCII, and any text may arrive.
    if not hmac.compare_digest(expected.encode(), signature.lower().encode("utf-8", "replace")):
        raise _bad_signature("Signature for this request is not valid.")
    return Caller(key.user_id, "api_key", signature.lower(), window, key)


def _unquote(text: str) -> str:
    # A base64 signature arrives URL-encoded (`+` `/` `=` as %2B %2F %3D) or raw.
    return unquote(text)


async def verify_request(request: web.Request, keys: ApiKeys) -> Caller:
    """`verify` of a request as it came."""
    params, query, body = await read_params(request)
    message, signature = signed_text(query, body)
    return await verify(request.headers.get(HEADER, ""), params, message, signature, keys)
