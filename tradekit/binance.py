"""Binance's wire vocabulary for HMAC keys, which the gateway verifies, the ledger stores and
the benches sign with.

An HMAC-SHA256 API key is 64 ASCII letters and digits (never the 44-character base64 of an
ED25519 key, so the shape alone tells the two apart); its secret is 64 more. A request's
signature is the lowercase hex HMAC-SHA256, under the secret, of its query string followed
by its body, exactly as sent and without the `signature` pair.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

HMAC_API_KEY = re.compile(r"[A-Za-z0-9]{64}").fullmatch
_ALPHABET = string.ascii_letters + string.digits
_NAMED = 2**32  # the first client order id a string is hashed to


def new_hmac_credentials() -> tuple[str, str]:
    """A fresh (API key, secret) pair, each 64 letters and digits (about 381 random bits)."""
    api_key, secret = ("".join(secrets.choice(_ALPHABET) for _ in range(64)) for _ in "ks")
    return api_key, secret


def client_order_id(text: str) -> int:
    """The engine's client order id for a `newClientOrderId`: digits up to 2^32-1 are the id
    itself (a Backpack `clientId`); any other string is hashed into 2^32..2^63-1."""
    if not text:
        return 0
    if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) < _NAMED:
        return int(text)
    digest = hashlib.blake2b(text.encode(), digest_size=8, person=b"binance-coid").digest()
    return _NAMED + int.from_bytes(digest, "big") % (2**63 - _NAMED)


def hmac_signature(secret: str | bytes, text: str | bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    data = text.encode() if isinstance(text, str) else text
    return hmac.new(key, data, hashlib.sha256).hexdigest()
