"""One user's REST client: signed with an API key (Backpack's way) or with a bearer token, or
on the Binance face with an HMAC key; every answer classified as acknowledged, refused or of
unknown fate (see `record`)."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from yarl import URL

from chaos.record import Outcome
from tradekit.backpack import INSTRUCTIONS, signing_strings
from tradekit.binance import hmac_signature

WINDOW_MS = 30_000  # wide: a frozen gateway or Redis delays requests by seconds
TIMEOUT = aiohttp.ClientTimeout(total=20)


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    status: int  # 0 when no HTTP answer came
    body: Any


def classify(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.ACKED
    if status >= 500:  # 503: a backend went away mid-request; the command's fate is unknown
        return Outcome.UNKNOWN
    return Outcome.REFUSED


def sign(secret_b64: str, instruction: str, params: Any) -> dict[str, str]:
    """Backpack's headers: ED25519 over the string the gateway verifies, values unencoded
    (`tradekit.backpack.signing_strings`; a list, a batch of orders, signs each item in turn)."""
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(secret_b64))
    public = base64.b64encode(key.public_key().public_bytes_raw()).decode()
    timestamp, window = str(int(time.time() * 1000)), str(WINDOW_MS)
    _, raw = signing_strings(instruction, params, timestamp, window)
    return {
        "X-API-Key": public,
        "X-Signature": base64.b64encode(key.sign(raw)).decode(),
        "X-Timestamp": timestamp,
        "X-Window": window,
    }


@dataclass
class UserClient:
    http: aiohttp.ClientSession
    base_url: str
    user_id: int
    token: str
    secret: str | None = None  # an API key's secret: sign requests with it, else the token
    hmac: tuple[str, str] | None = None  # an HMAC key (API key, secret): the Binance face

    async def call(self, method: str, path: str, params: Any = None) -> Answer:
        """GET sends `params` as the query, other methods as the JSON body."""
        if self.secret is not None:
            headers = sign(self.secret, INSTRUCTIONS[(method, path)], params)
        else:
            headers = {"Authorization": f"Bearer {self.token}"}
        return await request(self.http, method, self.base_url + path, params, headers)

    async def binance(self, method: str, path: str, params: dict[str, str]) -> Answer:
        """A request to the Binance face, its query signed with the HMAC key."""
        assert self.hmac is not None
        api_key, secret = self.hmac
        stamped = {
            **params,
            "timestamp": str(int(time.time() * 1000)),
            "recvWindow": str(WINDOW_MS),
        }
        query = urlencode(stamped)
        # encoded: the query goes out exactly as signed.
        url = URL(f"{self.base_url}{path}?{query}&signature={hmac_signature(secret, query)}",
                  encoded=True)  # fmt: skip
        return await request(self.http, method, url, headers={"X-MBX-APIKEY": api_key})


async def request(
    http: aiohttp.ClientSession,
    method: str,
    url: str | URL,
    params: Any = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    query = params if method == "GET" else None
    body = None if method == "GET" else params
    try:
        async with http.request(
            method, url, params=query, json=body, headers=headers, timeout=TIMEOUT
        ) as response:
            status = response.status
            data = await response.json(content_type=None)
    except aiohttp.ClientConnectorError:
        return Answer(Outcome.REFUSED, 0, None)  # never connected: nothing was sent
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return Answer(Outcome.UNKNOWN, 0, None)
    return Answer(classify(status), status, data)
