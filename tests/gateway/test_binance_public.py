"""The Binance dialect's market data, read by ccxt's unchanged `binance` class and by hand.

Alice and Bob trade on the Backpack face; ccxt's binance class then sees the same book,
trades, candles and tickers under Binance's symbols (TATA_INR is TATAINR).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from tests.gateway.binance_client import binance
from tests.gateway.conftest import Stack
from tests.gateway.test_rest import fund, signup

SYMBOL = "TATA/INR"


async def order(stack: Stack, auth: dict[str, str], **fields: str) -> dict[str, Any]:
    response = await stack.client.post(
        "/api/v1/order", json={"symbol": "TATA_INR", **fields}, headers=auth
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


@pytest.fixture
async def exchange(stack: Stack) -> AsyncIterator[Any]:
    _, alice = await signup(stack, "alice@binance.test")
    _, bob = await signup(stack, "bob@binance.test")
    await fund(stack, alice, "TATA", "100")
    await fund(stack, bob, "INR", "100000")
    await order(stack, alice, side="Ask", price="1600", quantity="5")
    await order(stack, alice, side="Ask", price="1700", quantity="3")
    await order(stack, bob, side="Bid", price="1500", quantity="2")
    await order(stack, bob, side="Bid", price="1650", quantity="4")  # takes 4 at 1600
    await stack.caught_up()
    client = binance(stack.url)
    yield client
    await client.close()


async def test_ccxt_binance_reads_the_market_data(stack: Stack, exchange: Any) -> None:
    markets = await exchange.load_markets()
    market = markets[SYMBOL]
    assert (market["id"], market["spot"], market["active"]) == ("TATAINR", True, True)
    assert market["precision"]["price"] == 0.01
    assert market["precision"]["amount"] == 1
    assert market["limits"]["amount"]["min"] == 1

    book = await exchange.fetch_order_book(SYMBOL)
    assert book["asks"][:2] == [[1600.0, 1.0], [1700.0, 3.0]]
    assert book["bids"] == [[1500.0, 2.0]]
    assert book["nonce"] == stack.engine.runtime.engine.seq

    trades = await exchange.fetch_trades(SYMBOL)
    assert [(t["price"], t["amount"], t["side"]) for t in trades] == [(1600, 4, "buy")]
    ticker = await exchange.fetch_ticker(SYMBOL)
    assert (ticker["last"], ticker["baseVolume"], ticker["bid"], ticker["ask"]) == (
        1600,
        4,
        1500,
        1600,
    )
    tickers = await exchange.fetch_tickers()
    assert tickers[SYMBOL]["last"] == 1600
    candles = await exchange.fetch_ohlcv(SYMBOL, "1m")
    assert [c[1:] for c in candles] == [[1600, 1600, 1600, 1600, 4]]
    assert await exchange.fetch_time() > 0
    bids_asks = await exchange.fetch_bids_asks([SYMBOL])
    assert (bids_asks[SYMBOL]["bid"], bids_asks[SYMBOL]["ask"]) == (1500, 1600)
    assert (await exchange.fetch_last_prices([SYMBOL]))[SYMBOL]["price"] == 1600


async def test_the_rest_endpoints_answer_as_binance_does(stack: Stack, exchange: Any) -> None:
    get = stack.client.get
    assert await (await get("/api/v3/ping")).json() == {}
    info = await (await get("/api/v3/exchangeInfo", params={"symbol": "TATAINR"})).json()
    [symbol] = info["symbols"]
    filters = {f["filterType"]: f for f in symbol["filters"]}
    assert set(filters) == {"PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "NOTIONAL"}
    assert (symbol["baseAsset"], symbol["quoteAsset"], symbol["status"]) == (
        "TATA",
        "INR",
        "TRADING",
    )
    both = await (await get("/api/v3/exchangeInfo", params={"symbols": '["TATAINR"]'})).json()
    assert [s["symbol"] for s in both["symbols"]] == ["TATAINR"]

    depth = await (await get("/api/v3/depth", params={"symbol": "TATAINR", "limit": "5"})).json()
    assert depth["lastUpdateId"] == stack.engine.runtime.engine.seq
    assert [Decimal(x) for x in depth["asks"][0]] == [1600, 1]

    [trade] = await (await get("/api/v3/trades", params={"symbol": "TATAINR"})).json()
    assert (Decimal(trade["price"]), trade["qty"], trade["isBuyerMaker"]) == (
        Decimal(1600),
        "4",
        False,
    )
    [agg] = await (await get("/api/v3/aggTrades", params={"symbol": "TATAINR"})).json()
    assert (agg["a"], agg["p"], agg["q"]) == (trade["id"], trade["price"], "4")
    later = await get("/api/v3/aggTrades", params={"symbol": "TATAINR", "fromId": agg["a"] + 1})
    assert await later.json() == []

    avg = await (await get("/api/v3/avgPrice", params={"symbol": "TATAINR"})).json()
    assert (avg["mins"], avg["price"]) == (5, "1600.00")
    price = await (await get("/api/v3/ticker/price", params={"symbol": "TATAINR"})).json()
    assert (price["symbol"], Decimal(price["price"])) == ("TATAINR", Decimal(1600))
    book = await (await get("/api/v3/ticker/bookTicker")).json()
    top = next(b for b in book if b["symbol"] == "TATAINR")
    assert (Decimal(top["bidPrice"]), top["bidQty"]) == (Decimal(1500), "2")


@pytest.mark.parametrize(
    ("path", "query", "code"),
    [
        ("/api/v3/depth", {"symbol": "NOPE"}, -1121),
        ("/api/v3/depth", {}, -1102),
        ("/api/v3/depth", {"symbol": "TATAINR", "limit": "x"}, -1100),
        ("/api/v3/klines", {"symbol": "TATAINR", "interval": "7m"}, -1120),
        ("/api/v3/exchangeInfo", {"symbols": "TATAINR"}, -1100),
        ("/api/v3/nothing", {}, -1000),
    ],
)
async def test_bad_requests_get_binance_error_bodies(
    stack: Stack, path: str, query: dict[str, str], code: int
) -> None:
    response = await stack.client.get(path, params=query)
    body = await response.json()
    assert response.status in (400, 404)
    assert body["code"] == code
    assert body["msg"]
    assert set(body) == {"code", "msg"}


async def test_ccxt_binance_raises_its_own_classes(exchange: Any) -> None:
    await exchange.load_markets()
    with pytest.raises(ccxt.BadSymbol):
        await exchange.public_get_depth({"symbol": "NOPE"})
