"""The load generator's users: traders signed up through the REST API with funded API
keys, and the signed requests they send (ED25519, the Backpack way; HMAC-SHA256 on the
Binance face)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import random
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tradekit.binance import hmac_signature

MARKET = "TATA_INR"  # tick 0.01 INR, step 1 TATA
FUNDS = {True: ("INR", "1000000000"), False: ("TATA", "10000000")}  # buyer, seller
WINDOW_MS = 5000
SIGNUP_CONCURRENCY = 8
PASSWORD = "bench password, long enough"


@dataclass(frozen=True)
class Trader:
    """One user's API key; a buyer or a seller for the whole run."""

    user_id: int
    key: Ed25519PrivateKey
    public_key: str
    buy: bool
    hmac_key: str  # the same user's HMAC key, for the Binance face
    hmac_secret: str

    def headers(self, message: str, timestamp: str) -> dict[str, str]:
        signature = base64.b64encode(self.key.sign(message.encode())).decode()
        return {
            "X-API-Key": self.public_key,
            "X-Signature": signature,
            "X-Timestamp": timestamp,
            "X-Window": str(WINDOW_MS),
            "Content-Type": "application/json",
        }


async def _post(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], token: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.post(url, json=body, headers=headers) as response:
        if response.status not in (200, 201):
            raise RuntimeError(f"POST {url}: {response.status} {await response.text()}")
        reply: dict[str, Any] = await response.json()
        return reply


async def make_traders(session: aiohttp.ClientSession, base: str, users: int) -> list[Trader]:
    """Sign up `users` users (Argon2: slow, so a few at a time), each with a funded key."""
    run = os.urandom(4).hex()
    gate = asyncio.Semaphore(SIGNUP_CONCURRENCY)

    async def one(i: int) -> Trader:
        buy = i % 2 == 0  # alternate, so that any first n traders hold both sides
        async with gate:
            email = f"bench-{run}-{i}@example.com"
            user = await _post(
                session, f"{base}/api/v1/auth/signup", {"email": email, "password": PASSWORD}
            )
        token = user["token"]
        key = await _post(session, f"{base}/api/v1/auth/apikeys", {"label": "bench"}, token)
        hmac_key = await _post(
            session, f"{base}/api/v1/auth/apikeys", {"label": "bench", "type": "hmac"}, token
        )
        asset, amount = FUNDS[buy]
        await _post(session, f"{base}/api/v1/onramp", {"asset": asset, "amount": amount}, token)
        private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(key["secret"]))
        return Trader(
            int(user["userId"]), private, key["publicKey"], buy, hmac_key["apiKey"],
            hmac_key["secret"],
        )  # fmt: skip

    return list(await asyncio.gather(*(one(i) for i in range(users))))


_client_ids = itertools.count(1)  # unique in the run: equal orders never sign alike


def order(rng: random.Random, buy: bool) -> dict[str, Any]:
    """A limit order near 1000.00 INR; one that crosses (offset < 0) is IOC."""
    offset = rng.randint(-20, 180)  # ticks away from 1000.00 on its own side
    cents = 100_000 - offset if buy else 100_000 + offset
    return {
        "symbol": MARKET,
        "side": "Bid" if buy else "Ask",
        "orderType": "Limit",
        "price": f"{cents // 100}.{cents % 100:02d}",
        "quantity": str(rng.randint(1, 10)),
        "timeInForce": "IOC" if offset < 0 else "GTC",
        "clientId": next(_client_ids),
    }


def _pairs(params: dict[str, Any]) -> str:
    return "&".join(f"{k}={params[k]}" for k in sorted(params))


def _now_ms() -> str:
    return str(int(time.time() * 1000))


# A request as sent: method, path, body, headers and the orders it carries.
Request = tuple[str, str, bytes | None, dict[str, str], int]


def single_request(trader: Trader, rng: random.Random) -> Request:
    params = order(rng, trader.buy)
    ts = _now_ms()
    message = f"instruction=orderExecute&{_pairs(params)}&timestamp={ts}&window={WINDOW_MS}"
    return "POST", "/api/v1/order", orjson.dumps(params), trader.headers(message, ts), 1


def binance_request(trader: Trader, rng: random.Random) -> Request:
    """`order` in Binance's terms, its query signed by the trader's HMAC key."""
    o = order(rng, trader.buy)
    query = (
        f"symbol={MARKET.replace('_', '')}&side={'BUY' if trader.buy else 'SELL'}&type=LIMIT"
        f"&timeInForce={o['timeInForce']}&quantity={o['quantity']}&price={o['price']}"
        f"&newClientOrderId={o['clientId']}&timestamp={_now_ms()}&recvWindow={WINDOW_MS}"
    )
    signature = hmac_signature(trader.hmac_secret, query)
    headers = {"X-MBX-APIKEY": trader.hmac_key}
    return "POST", f"/api/v3/order?{query}&signature={signature}", None, headers, 1


def batch_request(trader: Trader, rng: random.Random, size: int) -> Request:
    orders = [order(rng, trader.buy) for _ in range(size)]
    ts = _now_ms()
    signed = "".join(f"instruction=orderExecute&{_pairs(o)}&" for o in orders)
    message = f"{signed}timestamp={ts}&window={WINDOW_MS}"
    return "POST", "/api/v1/orders", orjson.dumps(orders), trader.headers(message, ts), size


def public_request(path: str) -> Request:
    return "GET", f"{path}?symbol={MARKET}", None, {}, 0
