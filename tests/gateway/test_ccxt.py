"""ccxt's `backpack` class, unchanged, trading against the gateway: the compatibility proof.

Two users sign up, make API keys, get funds from the faucet, and then use only ccxt:
markets, book, tickers, trades, candles, balances, limit and market orders, cancels, open
orders, order lookups and their own trades, trading against each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support as ccxt
import pytest

from tests.gateway.conftest import Stack
from tests.gateway.test_rest import fund, signup

SYMBOL = "TATA/INR"


async def trader(stack: Stack, email: str, funds: dict[str, str]) -> Any:
    _, auth = await signup(stack, email)
    for asset, amount in funds.items():
        await fund(stack, auth, asset, amount)
    key = await (
        await stack.client.post("/api/v1/auth/apikeys", json={"label": "ccxt"}, headers=auth)
    ).json()
    return ccxt.backpack(
        {
            "apiKey": key["publicKey"],
            "secret": key["secret"],
            "urls": {"api": {"public": stack.url, "private": stack.url}},
            "enableRateLimit": False,
        }
    )


@pytest.fixture
async def traders(stack: Stack) -> AsyncIterator[tuple[Any, Any]]:
    alice = await trader(stack, "alice@ccxt.test", {"TATA": "100", "INR": "10000"})
    bob = await trader(stack, "bob@ccxt.test", {"INR": "100000"})
    yield alice, bob
    await alice.close()
    await bob.close()


async def test_ccxt_backpack_trades_against_the_gateway(
    stack: Stack, traders: tuple[Any, Any]
) -> None:
    alice, bob = traders
    markets = await alice.load_markets()
    market = markets[SYMBOL]
    assert (market["base"], market["quote"], market["spot"], market["active"]) == (
        "TATA",
        "INR",
        True,
        True,
    )
    assert market["precision"]["price"] == 0.01
    await bob.load_markets()

    balance = await alice.fetch_balance()
    assert balance["TATA"]["free"] == 100
    assert balance["INR"]["total"] == 10000

    # Alice rests two sells; the book shows them.
    ask = await alice.create_order(SYMBOL, "limit", "sell", 5, 1600)
    assert ask["status"] == "open"
    far = await alice.create_order(SYMBOL, "limit", "sell", 3, 1700, {"clientOrderId": "42"})
    book = await bob.fetch_order_book(SYMBOL)
    assert book["asks"][:2] == [[1600.0, 5.0], [1700.0, 3.0]]
    assert book["nonce"] is not None

    # Bob takes the first with a market buy, then a limit buy that partly fills.
    taken = await bob.create_order(SYMBOL, "market", "buy", 2)
    assert taken["filled"] == 2
    partial = await bob.create_order(SYMBOL, "limit", "buy", 4, 1650)
    assert partial["filled"] == 3
    assert partial["status"] == "open"

    opened = await bob.fetch_open_orders(SYMBOL)
    assert [o["id"] for o in opened] == [partial["id"]]
    looked_up = await bob.fetch_open_order(partial["id"], SYMBOL)
    assert looked_up["remaining"] == 1
    cancelled = await bob.cancel_order(partial["id"], SYMBOL)
    assert cancelled["status"] == "canceled"

    await stack.caught_up()
    order = await alice.fetch_order(ask["id"], SYMBOL)
    assert (order["status"], order["filled"]) == ("closed", 5)
    orders = await alice.fetch_orders(SYMBOL)
    assert {o["id"] for o in orders} == {ask["id"], far["id"]}
    mine = await bob.fetch_my_trades(SYMBOL)
    assert sorted(t["amount"] for t in mine) == [2, 3]
    assert all(t["side"] == "buy" and t["price"] == 1600 for t in mine)
    assert all(t["fee"]["currency"] == "INR" for t in mine)

    trades = await bob.fetch_trades(SYMBOL)
    assert sorted(t["amount"] for t in trades) == [2, 3]
    ticker = await bob.fetch_ticker(SYMBOL)
    assert (ticker["last"], ticker["baseVolume"]) == (1600, 5)
    tickers = await bob.fetch_tickers()
    assert SYMBOL in tickers
    candles = await bob.fetch_ohlcv(SYMBOL, "1m")
    assert sum(c[5] for c in candles) == 5
    assert candles[-1][4] == 1600

    cancelled_all = await alice.cancel_all_orders(SYMBOL)
    assert [o["id"] for o in cancelled_all] == [far["id"]]
    assert await alice.fetch_open_orders(SYMBOL) == []
    after = await alice.fetch_balance()
    assert after["TATA"]["total"] == 95
    assert after["TATA"]["used"] == 0


async def test_ccxt_sees_errors_as_its_own_exception_classes(traders: tuple[Any, Any]) -> None:
    alice, _ = traders
    await alice.load_markets()
    with pytest.raises(ccxt.InsufficientFunds):
        await alice.create_order(SYMBOL, "limit", "buy", 1000, 1600)
    with pytest.raises(ccxt.InvalidOrder):
        await alice.create_order(
            SYMBOL, "limit", "sell", 1, 1600, {"postOnly": True, "price": "1600.001"}
        )
    broken = ccxt.backpack({"apiKey": alice.apiKey, "secret": "A" * 43 + "=", "urls": alice.urls})
    try:
        with pytest.raises(ccxt.AuthenticationError):
            await broken.fetch_balance()
    finally:
        await broken.close()
