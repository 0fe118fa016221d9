"""Who is calling: bearer tokens for the browser, ED25519-signed requests for API clients.

A request signed the Backpack way carries `X-API-Key` (base64 ED25519 public key),
`X-Timestamp` (ms), `X-Window` (ms, at most 60,000) and `X-Signature` over (the signing
strings: tradekit/backpack.py)

    instruction=<name>&<params sorted by key as k=v>&timestamp=<ts>&window=<window>

where params are the query (GET) or the JSON body (POST, DELETE); a batch body (a list)
signs `instruction=orderExecute&<order>&` once per order. ccxt URL-encodes values and
other clients do not, so both spellings verify (the raw one is tried only when it differs
and the encoded one failed: one verification per honest request, the costliest step, made
on a worker thread by `signatures.py`). A
signature is refused when its timestamp is further than its window from now (stale or
future), when it was seen before (replay, through Redis, so across replicas), or when the
key is unknown or revoked.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import jwt

from exchange.ledger.v1 import ledger_pb2 as lpb
from gateway_svc.errors import ApiError, unauthorized
from gateway_svc.limits import ReplayGuard
from gateway_svc.sealing import Sealer, Unsealable
from gateway_svc.signatures import PublicKey, SignatureChecker, ed25519_key
from tradekit.backpack import signing_candidates

MAX_WINDOW_MS = 60_000
DEFAULT_WINDOW_MS = 5_000
MAX_CACHED_KEYS = 100_000


@dataclass(frozen=True)
class Caller:
    user_id: int
    via: str  # "token" or "api_key"
    signature: str = ""  # a signed request's, for its replay check
    window_ms: int = 0  # the signature's validity window
    key: lpb.ApiKey | None = None  # a signed request's key: its scopes and allowlist


class Tokens:
    """Short-lived HS256 bearer tokens, signed with a secret every replica shares."""

    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self._ttl = ttl_seconds

    def issue(self, user_id: int) -> str:
        now = int(time.time())
        claims = {"sub": str(user_id), "iat": now, "exp": now + self._ttl}
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> int:
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=["HS256"], options={"require": ["exp", "sub"]}
            )
            return int(claims["sub"])
        except (jwt.PyJWTError, ValueError):
            raise unauthorized("the bearer token is invalid or expired") from None


class ApiKeys:
    """Checks signatures with keys decoded once (`SignatureChecker`), and looks keys up in
    the ledger, caching answers for a few seconds.

    A revocation made through this gateway takes effect at once (`forget`); one made
    through another replica within `cache_seconds`. An HMAC key's secret is unsealed once
    and kept in memory (`hmac_secret`), so its requests cost a dictionary look-up and one
    HMAC; the key's record (revocation, scopes) is still looked up as for any key.
    """

    def __init__(
        self,
        ledger: Any,
        cache_seconds: float,
        *,
        verify_on_thread: bool,
        sealer: Sealer | None = None,
    ) -> None:
        self._ledger = ledger
        self._ttl = cache_seconds
        self.sealer = sealer  # None: this deployment has no seal key, so no HMAC keys
        self._cache: dict[str, tuple[float, lpb.ApiKey | None]] = {}
        self._verifiers: dict[str, PublicKey] = {}
        self._secrets: dict[str, bytes] = {}
        self._checker = SignatureChecker(on_thread=verify_on_thread)

    def close(self) -> None:
        self._checker.close()

    def verifier(self, public_key: str) -> PublicKey:
        """The key, decoded once (ValueError or binascii.Error when it is not one)."""
        verifier = self._verifiers.get(public_key)
        if verifier is None:
            raw = base64.b64decode(public_key, validate=True)
            verifier = ed25519_key(raw)
            if len(self._verifiers) >= MAX_CACHED_KEYS:
                self._verifiers.clear()
            self._verifiers[public_key] = verifier
        return verifier

    async def verify(
        self, verifier: PublicKey, signature: bytes, messages: Iterator[bytes]
    ) -> bool:
        """True if the signature signs one of `messages`, tried in order as needed."""
        return await self._checker.verify(verifier, signature, messages)

    async def lookup(self, public_key: str) -> lpb.ApiKey | None:
        now = time.monotonic()
        hit = self._cache.get(public_key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            key: lpb.ApiKey | None = await self._ledger.LookupApiKey(
                lpb.LookupApiKeyRequest(public_key=public_key)
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise
            key = None
        if len(self._cache) >= MAX_CACHED_KEYS:
            self._cache.clear()
        self._cache[public_key] = (now + self._ttl, key)
        return key

    def hmac_secret(self, key: lpb.ApiKey) -> bytes | None:
        """An HMAC key's secret, unsealed once; None for an ED25519 key, or when it does not
        open here (no seal key, or another one)."""
        if key.kind != "hmac" or self.sealer is None:
            return None
        secret = self._secrets.get(key.public_key)
        if secret is None:
            try:
                secret = self.sealer.open(key.sealed_secret, key.public_key)
            except Unsealable:
                return None
            if len(self._secrets) >= MAX_CACHED_KEYS:
                self._secrets.clear()
            self._secrets[key.public_key] = secret
        return secret

    def forget(self, public_key: str) -> None:
        self._cache.pop(public_key, None)
        self._secrets.pop(public_key, None)


async def verify_signed(
    headers: Mapping[str, str],
    instruction: str,
    params: Any,
    keys: ApiKeys,
    replays: ReplayGuard | None,
    now_ms: int | None = None,
) -> Caller:
    """The caller of a Backpack-signed request, or ApiError 401. `replays` None accepts a
    signature more than once within its window (for reads such as stream subscriptions),
    or leaves its replay check to the caller, who has `signature` and `window_ms` for it."""
    public_key = headers.get("X-API-Key", "")
    signature_b64 = headers.get("X-Signature", "")
    timestamp = headers.get("X-Timestamp", "")
    window = headers.get("X-Window", str(DEFAULT_WINDOW_MS))
    if not (public_key and signature_b64 and timestamp):
        raise unauthorized("X-API-Key, X-Signature and X-Timestamp are required")
    # isdigit() is also true of "²" and of strings too long for int(): ASCII, 20 digits at most.
    if not all(v.isascii() and v.isdigit() and len(v) <= 20 for v in (timestamp, window)):
        raise unauthorized("X-Timestamp and X-Window must be integers (ms)")
    window_ms = int(window)
    if not 0 < window_ms <= MAX_WINDOW_MS:
        raise unauthorized(f"X-Window must be between 1 and {MAX_WINDOW_MS} ms")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now - int(timestamp)) > window_ms:
        raise unauthorized("X-Timestamp is outside its window (stale or in the future)")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        verifier = keys.verifier(public_key)
    except (binascii.Error, ValueError):
        raise ApiError(401, "INVALID_SIGNATURE", "malformed API key or signature") from None
    if not await keys.verify(
        verifier, signature, signing_candidates(instruction, params, timestamp, window)
    ):
        raise ApiError(401, "INVALID_SIGNATURE", "the signature does not match the request")
    key = await keys.lookup(public_key)
    if key is None or key.revoked_at_us:
        raise unauthorized("unknown or revoked API key")
    if replays is not None and not await replays.first_use(
        f"user:{key.user_id}", signature_b64, 2 * window_ms
    ):
        raise replayed()
    return Caller(key.user_id, "api_key", signature_b64, window_ms, key)


def replayed() -> ApiError:
    return ApiError(401, "INVALID_SIGNATURE", "this signature was already used")
