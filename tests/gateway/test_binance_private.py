"""ccxt's unchanged `binance` class trading on the gateway with Binance-signed requests.

Alice (on the Binance face, with her ED25519 key) and Bob (on the Backpack face) trade
against each other; both see the same balances, orders and history.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import ccxt.async_support as ccxt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway_svc.binance import client_ids
from tests.gateway.binance_client import binance
from tests.gateway.conftest import Stack
from tests.gateway.test_binance_public import order
from tests.gateway.test_rest import fund, signup

SYMBOL = "TATA/INR"


def pem(secret_b64: str) -> str:
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(secret_b64))
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


async def api_key(stack: Stack, auth: dict[str, str]) -> dict[str, str]:
    response = await stack.client.post("/api/v1/auth/apikeys", json={"label": "b"}, headers=auth)
    assert response.status == 201
    key: dict[str, str] = await response.json()
    return key


@pytest.fixture
async def alice(stack: Stack) -> AsyncIterator[tuple[Any, dict[str, str]]]:
    _, auth = await signup(stack, "alice@binance.test")
    await fund(stack, auth, "TATA", "100")
    await fund(stack, auth, "INR", "10000")
    key = await api_key(stack, auth)
    client = binance(stack.url, apiKey=key["publicKey"], secret=pem(key["secret"]))
    yield client, key
    await client.close()


async def test_ccxt_binance_trades_against_a_backpack_user(
    stack: Stack, alice: tuple[Any, dict[str, str]]
) -> None:
    client, _ = alice
    _, bob = await signup(stack, "bob@binance.test")
    await fund(stack, bob, "INR", "100000")
    await client.load_markets()

    balance = await client.fetch_balance()
    assert (balance["TATA"]["free"], balance["INR"]["total"]) == (100, 10000)

    ask = await client.create_order(SYMBOL, "limit", "sell", 5, 1600)
    assert (ask["status"], ask["amount"], ask["price"]) == ("open", 5, 1600)
    far = await client.create_order(SYMBOL, "limit", "sell", 3, 1700, {"clientOrderId": "42"})
    assert far["clientOrderId"] == "42"
    opened = await client.fetch_open_orders(SYMBOL)
    assert {o["id"] for o in opened} == {ask["id"], far["id"]}
    assert (await client.fetch_balance())["TATA"]["used"] == 8

    # Bob, on the Backpack face, takes 2 of her ask and bids lower; she sells him 1 at market.
    await order(stack, bob, side="Bid", price="1600", quantity="2")
    await order(stack, bob, side="Bid", price="1500", quantity="4")
    sold = await client.create_order(SYMBOL, "market", "sell", 1)
    assert (sold["status"], sold["filled"], sold["average"]) == ("closed", 1, 1500)

    await stack.caught_up()
    fetched = await client.fetch_order(ask["id"], SYMBOL)
    assert (fetched["status"], fetched["filled"]) == ("open", 2)
    by_client = await client.fetch_order(None, SYMBOL, {"origClientOrderId": "42"})
    assert by_client["id"] == far["id"]
    cancelled = await client.cancel_order(far["id"], SYMBOL)
    assert cancelled["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        await client.cancel_order(far["id"], SYMBOL)
    await stack.caught_up()
    closed = await client.fetch_order(far["id"], SYMBOL)
    assert closed["status"] == "canceled"

    mine = await client.fetch_my_trades(SYMBOL)
    assert sorted((t["side"], t["price"], t["amount"]) for t in mine) == [
        ("sell", 1500, 1),
        ("sell", 1600, 2),
    ]
    orders = await client.fetch_orders(SYMBOL)
    assert {o["id"] for o in orders} >= {ask["id"], far["id"], sold["id"]}
    await client.cancel_all_orders(SYMBOL)
    assert await client.fetch_open_orders(SYMBOL) == []
    after = await client.fetch_balance()
    assert (after["TATA"]["total"], after["TATA"]["used"]) == (97, 0)

    # A market buy by cost: Bob asks 1 at 1650, she spends up to 1700 INR.
    await fund(stack, bob, "TATA", "1")
    await order(stack, bob, side="Ask", price="1650", quantity="1")
    by_cost = await client.create_order(
        SYMBOL, "market", "buy", None, None, {"quoteOrderQty": "1700"}
    )
    assert (by_cost["filled"], by_cost["cost"]) == (1, 1650)

    with pytest.raises(ccxt.InsufficientFunds):
        await client.create_order(SYMBOL, "limit", "sell", 1000, 1600)
    off_tick = {"symbol": "TATAINR", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC"}
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        await client.private_post_order({**off_tick, "quantity": "1", "price": "1600.001"})


def signed(secret_b64: str, params: dict[str, str]) -> str:
    """A query string signed as Binance clients sign it: base64 ED25519, URL-encoded."""
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(secret_b64))
    query = urlencode(params)
    signature = base64.b64encode(key.sign(query.encode())).decode()
    return f"{query}&{urlencode({'signature': signature})}"


async def test_signatures_windows_and_keys_are_checked(
    stack: Stack, alice: tuple[Any, dict[str, str]]
) -> None:
    _, key = alice
    now = str(int(time.time() * 1000))
    headers = {"X-MBX-APIKEY": key["publicKey"]}

    async def code(query: str, api_key: str = key["publicKey"]) -> tuple[int, int]:
        response = await stack.client.get(
            f"/api/v3/account?{query}", headers={"X-MBX-APIKEY": api_key}
        )
        body = await response.json()
        return response.status, body.get("code", 0)

    good = signed(key["secret"], {"timestamp": now})
    assert (await stack.client.get(f"/api/v3/account?{good}", headers=headers)).status == 200
    assert await code(good) == (401, -1022)  # the same signature again: a replay
    other = base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()
    assert (await code(signed(other, {"timestamp": now, "recvWindow": "6000"})))[1] == -1022
    stale = str(int(now) - 10_000)
    assert (await code(signed(key["secret"], {"timestamp": stale})))[1] == -1021
    ahead = str(int(now) + 5_000)
    assert (await code(signed(key["secret"], {"timestamp": ahead})))[1] == -1021
    wide = signed(key["secret"], {"timestamp": now, "recvWindow": "60001"})
    assert (await code(wide))[1] == -1100
    assert (await code(f"timestamp={now}"))[1] == -1102  # no signature
    assert (await code(good, api_key="not base64!"))[1] == -2014
    unknown = base64.b64encode(
        Ed25519PrivateKey.from_private_bytes(base64.b64decode(other))
        .public_key()
        .public_bytes_raw()
    ).decode()
    assert await code(signed(other, {"timestamp": now, "recvWindow": "7000"}), unknown) == (
        401,
        -2015,
    )
    tampered = (
        signed(key["secret"], {"timestamp": now, "recvWindow": "8000"}) + "&omitZeroBalances=true"
    )
    assert (await code(tampered))[1] == -1022
    # Without any credential, and on a Backpack path, a Binance key is no credential.
    anonymous = await stack.client.get(f"/api/v3/account?timestamp={now}")
    assert (anonymous.status, (await anonymous.json())["code"]) == (401, -2015)
    backpack = await stack.client.get("/api/v1/capital", headers=headers)
    assert backpack.status == 401


async def test_a_new_orders_fills_as_maker_carry_its_maker_commission(
    stack: Stack, alice: tuple[Any, dict[str, str]]
) -> None:
    """Alice's buy takes Bob's 1 at 1610 and rests 1; that trade fires Bob's sell stop,
    which takes her rest in the same command. Her FULL answer lists both fills, each with
    the commission she paid on it (taker, then maker), as myTrades has them."""
    client, _ = alice
    _, bob = await signup(stack, "bob@binance.test")
    _, carol = await signup(stack, "carol@binance.test")
    await fund(stack, bob, "TATA", "10")
    await fund(stack, carol, "INR", "10000")
    await order(stack, bob, side="Ask", price="1600", quantity="1")
    await order(stack, carol, side="Bid", price="1600", quantity="1")
    stop = {"side": "Ask", "orderType": "Market", "triggerPrice": "1610", "triggerQuantity": "1"}
    assert (await order(stack, bob, **stop))["status"] == "TriggerPending"
    await order(stack, bob, side="Ask", price="1610", quantity="1")
    placed = await client.private_post_order(
        {"symbol": "TATAINR", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
         "quantity": "2", "price": "1610", "newOrderRespType": "FULL"}
    )  # fmt: skip
    assert (placed["status"], placed["executedQty"]) == ("FILLED", "2")
    await stack.caught_up()
    trades = await client.private_get_mytrades({"symbol": "TATAINR"})
    paid = sorted((int(t["id"]), t["isMaker"], t["commission"]) for t in trades)
    assert [(int(f["tradeId"]), f["commission"]) for f in placed["fills"]] == [
        (trade_id, commission) for trade_id, _, commission in paid
    ]
    assert [maker for _, maker, _ in paid] == [False, True]


async def test_a_client_order_id_that_is_not_a_number_is_kept(
    stack: Stack, alice: tuple[Any, dict[str, str]]
) -> None:
    """ccxt names each order `x-<broker><uuid>`; the name comes back in every answer, by
    orderId or by the name, from memory or (a gateway that never saw it) from the ledger."""
    client, _ = alice
    await client.load_markets()
    first = await client.create_order(SYMBOL, "limit", "sell", 1, 1700)
    named = first["clientOrderId"]
    assert named.startswith("x-TKT5PX2F")
    assert len(named) > 20
    other = await client.create_order(SYMBOL, "limit", "sell", 1, 1800, {"clientOrderId": "a.b"})
    assert other["clientOrderId"] == "a.b"
    with pytest.raises(ccxt.InvalidOrder):  # unique among open orders, as the engine keeps it
        await client.create_order(SYMBOL, "limit", "sell", 1, 1900, {"clientOrderId": "a.b"})

    client_ids._names.clear()  # a replica that never placed them reads the names back
    fetched = await client.fetch_order(first["id"], SYMBOL)
    assert fetched["clientOrderId"] == named
    by_name = await client.fetch_order(None, SYMBOL, {"origClientOrderId": named})
    assert (by_name["id"], by_name["clientOrderId"]) == (first["id"], named)
    opened = await client.fetch_open_orders(SYMBOL)
    assert {o["id"]: o["clientOrderId"] for o in opened} == {
        first["id"]: named,
        other["id"]: "a.b",
    }
    client_ids._names.clear()
    cancelled = await client.cancel_order(None, SYMBOL, {"origClientOrderId": "a.b"})
    assert (cancelled["id"], cancelled["clientOrderId"]) == (other["id"], "a.b")
    raw = await client.private_delete_openorders({"symbol": "TATAINR"})
    assert [(int(o["orderId"]), o["origClientOrderId"]) for o in raw] == [(int(first["id"]), named)]
    await stack.caught_up()
    client_ids._names.clear()
    history = await client.fetch_orders(SYMBOL)
    assert {o["id"]: o["clientOrderId"] for o in history} == {
        first["id"]: named,
        other["id"]: "a.b",
    }
    with pytest.raises(ccxt.OrderNotFound):
        await client.cancel_order(None, SYMBOL, {"origClientOrderId": "never.sent"})


async def test_orders_and_trades_page_as_binance_defines(
    stack: Stack, alice: tuple[Any, dict[str, str]]
) -> None:
    """From an id or a start time on: the oldest `limit`; with neither: the newest `limit`;
    always oldest first."""
    client, _ = alice
    _, bob = await signup(stack, "bob@binance.test")
    await fund(stack, bob, "INR", "100000")
    ask = {"symbol": "TATAINR", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC"}
    placed = [
        int((await client.private_post_order({**ask, "quantity": "1", "price": str(p)}))["orderId"])
        for p in (1600, 1601, 1602, 1603, 1604)
    ]
    for _ in range(4):  # four trades, one per ask from the cheapest
        await order(stack, bob, side="Bid", orderType="Market", quantity="1")
    await stack.caught_up()

    def ids(rows: list[dict[str, Any]], key: str) -> list[int]:
        return [int(r[key]) for r in rows]

    market = {"symbol": "TATAINR", "limit": "2"}
    orders = client.private_get_allorders
    assert ids(await orders(market), "orderId") == placed[3:5]
    assert ids(await orders({**market, "orderId": placed[1]}), "orderId") == placed[1:3]
    assert ids(await orders({**market, "startTime": "1"}), "orderId") == placed[0:2]
    assert await orders({**market, "endTime": "1"}) == []

    trades = ids(await client.private_get_mytrades({"symbol": "TATAINR"}), "id")
    assert len(trades) == 4
    assert trades == sorted(trades)
    mine = client.private_get_mytrades
    assert ids(await mine(market), "id") == trades[2:4]
    assert ids(await mine({**market, "fromId": trades[1]}), "id") == trades[1:3]
    assert ids(await mine({**market, "startTime": "1"}), "id") == trades[0:2]
    assert ids(await mine({**market, "orderId": placed[2]}), "id") == trades[2:3]

    agg = client.public_get_aggtrades
    assert ids(await agg(market), "a") == trades[2:4]
    assert ids(await agg({**market, "fromId": trades[1]}), "a") == trades[1:3]
    assert ids(await agg({**market, "startTime": "1"}), "a") == trades[0:2]
    assert await agg({**market, "endTime": "1"}) == []
    historical = client.public_get_historicaltrades
    assert ids(await historical(market), "id") == trades[2:4]
    assert ids(await historical({**market, "fromId": trades[0]}), "id") == trades[0:2]
