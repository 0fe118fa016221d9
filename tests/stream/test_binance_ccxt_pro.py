"""ccxt.pro's unchanged `binance` class watching the gateway's Binance streams: the order
book (equal to REST depth), trades, ticker, candles, and (over the WebSocket API's signed
user-data subscription) the caller's own orders and balance."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import ccxt.pro as ccxtpro
import pytest

from gateway_svc.streams import UPSTREAMS
from tests.gateway.binance_client import ccxt_config
from tests.gateway.test_binance_private import api_key, pem
from tests.gateway.test_rest import fund, signup
from tests.stream.conftest import Live
from tests.stream.test_ccxt_pro import settled, within

SYMBOL = "TATA/INR"


async def binance_pro(live: Live, email: str, funds: dict[str, str]) -> Any:
    _, auth = await signup(live.stack, email)
    for asset, amount in funds.items():
        await fund(live.stack, auth, asset, amount)
    key = await api_key(live.stack, auth)
    ws = live.stack.url.replace("http://", "ws://")
    config = ccxt_config(live.stack.url)
    config["urls"]["api"]["ws"] = {"spot": f"{ws}/ws", "ws-api": {"spot": f"{ws}/ws-api/v3"}}
    client = ccxtpro.binance({"apiKey": key["publicKey"], "secret": pem(key["secret"]), **config})
    await client.load_markets()
    return client


async def upstreams_open(live: Live, *kinds: str) -> None:
    """ccxt subscribes in its own tasks, and no acknowledgement reaches the caller: wait until
    the gateway's upstream of each kind is open (only this test's watchers open them)."""
    upstreams = live.stack.client.app[UPSTREAMS].by_topic
    async with asyncio.timeout(30):
        while not all(  # noqa: ASYNC110 - polls the gateway's upstream tasks
            any(t.startswith(kind) and u.connected.is_set() for t, u in upstreams.items())
            for kind in kinds
        ):
            await asyncio.sleep(0.05)


@pytest.fixture
async def pros(live: Live) -> AsyncIterator[tuple[Any, Any]]:
    alice = await binance_pro(live, "alice@binance-pro.test", {"TATA": "100", "INR": "10000"})
    bob = await binance_pro(live, "bob@binance-pro.test", {"INR": "100000"})
    await live.published()
    yield alice, bob
    await alice.close()
    await bob.close()


async def test_ccxt_pro_binance_watches_the_gateway(live: Live, pros: tuple[Any, Any]) -> None:
    alice, bob = pros
    orders = asyncio.ensure_future(alice.watch_orders(SYMBOL))
    balance = asyncio.ensure_future(alice.watch_balance())
    trades = asyncio.ensure_future(bob.watch_trades(SYMBOL))
    book_task = asyncio.ensure_future(bob.watch_order_book(SYMBOL))
    await upstreams_open(live, "orders.", "balances.", "trade.", "depth.")

    ask = await alice.create_order(SYMBOL, "limit", "sell", 5, 1600)
    seen = await within(orders, 30)
    assert (seen[-1]["id"], seen[-1]["status"], seen[-1]["amount"]) == (ask["id"], "open", 5)
    assert seen[-1]["clientOrderId"] == ask["clientOrderId"]  # ccxt's own x-... name
    assert ask["clientOrderId"].startswith("x-")
    bal = await within(balance, 30)
    assert bal["TATA"]["used"] == 5

    # ccxt takes REST depth once the subscription is acknowledged and applies the diffs after
    # it; orders go on until it has a book.
    asks = 0  # of 1 TATA each, at 1700, 1710, ...
    async with asyncio.timeout(60):
        while not book_task.done():
            await alice.create_order(SYMBOL, "limit", "sell", 1, 1700 + 10 * asks)
            asks += 1
            await asyncio.wait([book_task], timeout=0.2)
    book = book_task.result()
    for _ in range(40):
        rest = await bob.fetch_order_book(SYMBOL)
        if book["asks"] == rest["asks"] and book["nonce"] == rest["nonce"]:
            break
        book = await within(bob.watch_order_book(SYMBOL), 30)
    assert book["nonce"] == rest["nonce"]
    assert (book["asks"], book["bids"]) == (rest["asks"], rest["bids"])

    ticker_task = asyncio.ensure_future(bob.watch_ticker(SYMBOL))
    ohlcv_task = asyncio.ensure_future(bob.watch_ohlcv(SYMBOL, "1m"))
    await upstreams_open(live, "ticker.", "kline.1m.")
    taken = await bob.create_order(SYMBOL, "market", "buy", 2)
    assert taken["filled"] == 2

    got = await within(trades, 30)
    assert (got[-1]["price"], got[-1]["amount"], got[-1]["symbol"]) == (1600, 2, SYMBOL)
    ticker = await within(ticker_task, 30)
    assert ticker["last"] == 1600
    assert ticker["baseVolume"] >= 2
    candles = await within(ohlcv_task, 30)
    assert candles[-1][4] == 1600  # close
    assert candles[-1][5] >= 2  # volume

    # The fill and the new balances reach alice's watchers (ccxt keeps them in its caches).
    async with asyncio.timeout(30):
        while not any(o["id"] == ask["id"] and o["filled"] == 2 for o in alice.orders or []):  # noqa: ASYNC110 - polls ccxt's cache
            await asyncio.sleep(0.05)
        # ccxt keeps balances by account type; one update per asset: wait for both.
        while not settled(alice.balance.get("spot") or {}, asks):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
