"""HMAC-SHA256 keys on the Binance face: made once with their secret, stored only sealed,
verified like any key (scopes, address allowlists, revocation), ED25519 keys unchanged."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import ccxt.async_support as ccxt
import pytest

from tests.gateway.binance_client import binance
from tests.gateway.conftest import Stack
from tests.gateway.test_rest import fund, signup
from tradekit.binance import hmac_signature

SYMBOL = "TATA/INR"


async def hmac_key(stack: Stack, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = await stack.client.post(
        "/api/v1/auth/apikeys", json={"type": "hmac", **fields}, headers=auth
    )
    assert response.status == 201, await response.text()
    key: dict[str, Any] = await response.json()
    return key


def signed_query(secret: str, **params: str) -> str:
    query = urlencode({"timestamp": str(int(time.time() * 1000)), **params})
    return f"{query}&signature={hmac_signature(secret, query)}"


async def account(stack: Stack, api_key: str, query: str) -> tuple[int, dict[str, Any]]:
    response = await stack.client.get(f"/api/v3/account?{query}", headers={"X-MBX-APIKEY": api_key})
    body: dict[str, Any] = await response.json()
    return response.status, body


async def test_an_hmac_key_is_shown_once_and_stored_sealed(stack: Stack) -> None:
    user_id, auth = await signup(stack, "hmac@binance.test")
    key = await hmac_key(stack, auth, label="bot")
    assert key["type"] == "hmac"
    assert key["publicKey"] == key["apiKey"]
    assert len(key["apiKey"]) == 64
    assert len(key["secret"]) == 64
    assert key["secret"].isalnum()
    listed = await (await stack.client.get("/api/v1/auth/apikeys", headers=auth)).json()
    assert [(k["type"], k["publicKey"]) for k in listed] == [("hmac", key["apiKey"])]
    assert all("secret" not in k for k in listed)
    async with stack.ledger.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT kind, sealed_secret FROM api_keys WHERE public_key = $1", key["apiKey"]
        )
    assert row is not None
    assert row["kind"] == "hmac"
    assert key["secret"].encode() not in bytes(row["sealed_secret"])

    status, body = await account(stack, key["apiKey"], signed_query(key["secret"]))
    assert (status, body["uid"]) == (200, user_id)
    # A publicKey with type hmac, or an unknown type, is refused and makes nothing.
    for fields in ({"type": "hmac", "publicKey": "x"}, {"type": "rsa"}):
        refused = await stack.client.post("/api/v1/auth/apikeys", json=fields, headers=auth)
        assert refused.status == 400
    assert len(await (await stack.client.get("/api/v1/auth/apikeys", headers=auth)).json()) == 1


async def test_hmac_signatures_are_checked_like_any_key(stack: Stack) -> None:
    _, auth = await signup(stack, "checks@binance.test")
    key = await hmac_key(stack, auth)
    api_key, secret = key["apiKey"], key["secret"]

    good = signed_query(secret)
    assert (await account(stack, api_key, good))[0] == 200
    status, body = await account(stack, api_key, good)  # the same signature again
    assert (status, body["code"]) == (401, -1022)
    wrong = signed_query("x" * 64, recvWindow="6000")
    assert (await account(stack, api_key, wrong))[1]["code"] == -1022
    tampered = signed_query(secret, recvWindow="7000") + "&omitZeroBalances=true"
    assert (await account(stack, api_key, tampered))[1]["code"] == -1022
    stale = urlencode({"timestamp": str(int(time.time() * 1000) - 10_000)})
    stale += f"&signature={hmac_signature(secret, stale)}"
    assert (await account(stack, api_key, stale))[1]["code"] == -1021
    unknown = await account(stack, "A" * 64, signed_query(secret, recvWindow="8000"))
    assert (unknown[0], unknown[1]["code"]) == (401, -2015)

    revoked = await stack.client.delete(
        "/api/v1/auth/apikeys", json={"keyId": key["keyId"]}, headers=auth
    )
    assert revoked.status == 200
    gone = await account(stack, api_key, signed_query(secret, recvWindow="9000"))
    assert (gone[0], gone[1]["code"]) == (401, -2015)


async def test_scopes_and_allowlists_fence_hmac_keys(stack: Stack) -> None:
    _, auth = await signup(stack, "fences@binance.test")
    await fund(stack, auth, "INR", "10000")
    reader = await hmac_key(stack, auth, permissions=["read"])
    elsewhere = await hmac_key(stack, auth, ipAllowlist=["10.0.0.0/8"])
    order = {"symbol": "TATAINR", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    query = signed_query(reader["secret"], **order, quantity="1", price="1000")
    response = await stack.client.post(
        f"/api/v3/order?{query}", headers={"X-MBX-APIKEY": reader["apiKey"]}
    )
    assert (response.status, (await response.json())["code"]) == (403, -2015)
    status, body = await account(stack, elsewhere["apiKey"], signed_query(elsewhere["secret"]))
    assert (status, body["code"]) == (403, -2015)
    assert (await account(stack, reader["apiKey"], signed_query(reader["secret"])))[0] == 200


async def test_ccxt_binance_trades_with_an_hmac_key_beside_an_ed25519_one(stack: Stack) -> None:
    _, auth = await signup(stack, "ccxt-hmac@binance.test")
    await fund(stack, auth, "TATA", "10")
    key = await hmac_key(stack, auth)
    client = binance(stack.url, apiKey=key["apiKey"], secret=key["secret"])
    try:
        await client.load_markets()
        assert (await client.fetch_balance())["TATA"]["free"] == 10
        ask = await client.create_order(SYMBOL, "limit", "sell", 2, 1600)
        assert [o["id"] for o in await client.fetch_open_orders(SYMBOL)] == [ask["id"]]
        assert (await client.cancel_order(ask["id"], SYMBOL))["status"] == "canceled"
        with pytest.raises(ccxt.InsufficientFunds):
            await client.create_order(SYMBOL, "limit", "sell", 100, 1600)
    finally:
        await client.close()


async def test_a_key_sealed_by_another_deployment_does_not_open(stack_factory: Any) -> None:
    first = await stack_factory()
    other = await stack_factory(api_secret_seal_key="another-seal-key-another-seal-key-0")
    unsealed = await stack_factory(api_secret_seal_key="")
    _, auth = await signup(first, "seal@binance.test")
    key = await hmac_key(first, auth)
    status, body = await account(other, key["apiKey"], signed_query(key["secret"]))
    assert (status, body["code"]) == (401, -2015)
    refused = await unsealed.client.post(
        "/api/v1/auth/apikeys", json={"type": "hmac"}, headers=auth
    )
    assert (refused.status, (await refused.json())["code"]) == (400, "HMAC_KEYS_DISABLED")
    assert (await account(first, key["apiKey"], signed_query(key["secret"])))[0] == 200
