"""ccxt.pro's `backpack` class, unchanged, watching the gateway's WebSocket: order book
(equal to REST depth), trades, ticker, candles, and the caller's own orders and balance."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import ccxt.pro as ccxtpro
import pytest

from tests.gateway.test_rest import fund, signup
from tests.stream.conftest import Live

SYMBOL = "TATA/INR"
T = TypeVar("T")


async def pro_client(live: Live, email: str, funds: dict[str, str]) -> Any:
    _, auth = await signup(live.stack, email)
    for asset, amount in funds.items():
        await fund(live.stack, auth, asset, amount)
    key = await (
        await live.stack.client.post("/api/v1/auth/apikeys", json={"label": "pro"}, headers=auth)
    ).json()
    ws = live.stack.url.replace("http://", "ws://")
    client = ccxtpro.backpack(
        {
            "apiKey": key["publicKey"],
            "secret": key["secret"],
            "urls": {
                "api": {
                    "public": live.stack.url,
                    "private": live.stack.url,
                    "ws": {"public": ws, "private": ws},
                }
            },
            "enableRateLimit": False,
        }
    )
    await client.load_markets()
    return client


@pytest.fixture
async def pros(live: Live) -> AsyncIterator[tuple[Any, Any]]:
    alice = await pro_client(live, "alice@pro.test", {"TATA": "100", "INR": "10000"})
    bob = await pro_client(live, "bob@pro.test", {"INR": "100000"})
    await live.published()
    yield alice, bob
    await alice.close()
    await bob.close()


async def within(awaitable: Awaitable[T], seconds: float = 10) -> T:
    async with asyncio.timeout(seconds):
        return await awaitable


def settled(balance: dict[str, Any], asks: int) -> bool:
    """Alice's balance once her sale is in: proceeds in INR, 3 + `asks` TATA still locked."""
    inr, tata = balance.get("INR", {}), balance.get("TATA", {})
    return bool(inr.get("free", 0) > 10000 and tata.get("used") == 3 + asks)


async def test_ccxt_pro_watches_the_gateway(live: Live, pros: tuple[Any, Any]) -> None:
    alice, bob = pros
    # Private streams first, so that they see everything that follows.
    orders = asyncio.ensure_future(alice.watch_orders(SYMBOL))
    balance = asyncio.ensure_future(alice.watch_balance())
    trades = asyncio.ensure_future(bob.watch_trades(SYMBOL))
    book_task = asyncio.ensure_future(bob.watch_order_book(SYMBOL))
    await asyncio.sleep(0.5)  # subscribed

    ask = await alice.create_order(SYMBOL, "limit", "sell", 5, 1600)
    seen = await within(orders)
    assert seen[-1]["id"] == ask["id"]
    assert seen[-1]["status"] == "open"
    bal = await within(balance)
    assert bal["TATA"]["used"] == 5

    # ccxt buffers ten depth frames, then syncs with REST depth by lastUpdateId; the gateway
    # merges the diffs of an interval into one frame, so orders go on until ccxt has ten.
    asks = 0  # of 1 TATA each, at 1700, 1710, ...
    async with asyncio.timeout(60):
        while not book_task.done():
            await alice.create_order(SYMBOL, "limit", "sell", 1, 1700 + 10 * asks)
            asks += 1
            await asyncio.wait([book_task], timeout=0.2)
    book = book_task.result()
    for _ in range(20):
        rest = await bob.fetch_order_book(SYMBOL)
        if book["asks"][: len(rest["asks"])] == rest["asks"] and book["nonce"] >= rest["nonce"]:
            break
        book = await within(bob.watch_order_book(SYMBOL))
    assert book["asks"] == rest["asks"]
    assert book["bids"] == rest["bids"]

    ticker_task = asyncio.ensure_future(bob.watch_ticker(SYMBOL))
    ohlcv_task = asyncio.ensure_future(bob.watch_ohlcv(SYMBOL, "1m"))
    await asyncio.sleep(0.5)
    taken = await bob.create_order(SYMBOL, "market", "buy", 2)
    assert taken["filled"] == 2

    got = await within(trades)
    assert got[-1]["price"] == 1600
    assert got[-1]["amount"] == 2
    assert got[-1]["timestamp"] > 0
    ticker = await within(ticker_task)
    assert ticker["last"] == 1600
    assert ticker["baseVolume"] >= 2
    candles = await within(ohlcv_task)
    assert candles[-1][4] == 1600  # close
    assert candles[-1][5] >= 2  # volume

    # The fill and the new balance reach alice's watchers (ccxt keeps them in its caches).
    async with asyncio.timeout(10):  # ccxt updates its caches in its own tasks: poll them
        while not any(o["id"] == ask["id"] and o["filled"] == 2 for o in alice.orders or []):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        # One balance update per asset: wait for both.
        while not settled(alice.balance, asks):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_ccxt_pro_watches_a_stop_wait_fire_and_fill(
    live: Live, pros: tuple[Any, Any]
) -> None:
    """`watchOrders` sees a trigger order pending with its trigger price, then the order it
    became (the same id) filled when a trade reaches it."""
    alice, bob = pros
    orders = asyncio.ensure_future(alice.watch_orders(SYMBOL))
    asks = 0  # of 1 TATA at 1600: until the watcher, subscribed, has seen one
    async with asyncio.timeout(60):
        while not orders.done():
            await alice.create_order(SYMBOL, "limit", "sell", 1, 1600)
            asks += 1
            await asyncio.wait([orders], timeout=0.5)
    await bob.create_order(SYMBOL, "limit", "buy", asks, 1600)  # the last price: 1600

    stop = await alice.create_trigger_order(SYMBOL, "market", "sell", 2, None, 1500)
    await bob.create_order(SYMBOL, "limit", "buy", 2, 1450)  # what the stop sells to

    def cached() -> dict[str, Any] | None:
        return next((o for o in alice.orders or [] if o["id"] == stop["id"]), None)

    async with asyncio.timeout(30):  # ccxt updates its cache in its own tasks: poll it
        while (seen := cached()) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert (seen["status"], seen["triggerPrice"]) == ("open", 1500)

    await alice.create_order(SYMBOL, "limit", "sell", 1, 1500)
    await bob.create_order(SYMBOL, "limit", "buy", 1, 1500)  # a trade at 1500 fires it
    async with asyncio.timeout(30):
        while not ((seen := cached()) and seen["status"] == "closed"):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert seen["filled"] == 2
    fetched = await alice.fetch_order(stop["id"], SYMBOL)
    assert (fetched["status"], fetched["filled"], fetched["triggerPrice"]) == ("closed", 2, 1500)
