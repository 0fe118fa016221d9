"""stream_svc learns its markets in the background, from the engine and from Redis; both
orders of arrival must leave a correct book and the recent trades (found by the chaos
suite: a restarted stream_svc crashed on a diff for a market whose book was not loaded yet,
refused a gateway's subscription to a market it had not listed yet, and never loaded the
recent trades of a market whose first message came before the engine's list, so the
gateway could not bridge the trades of its restart)."""

from __future__ import annotations

import asyncio

import pytest

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from stream_svc.hub import MarketCache, StreamHub, UnknownMarket
from tests.engine.conftest import deposit
from tests.stream.conftest import Live, stream_settings, streaming
from tradekit.topics import Topic

MARKET = "TATA_INR"


def bid(
    price: str, user: int = 1, side: cpb.Side.ValueType = cpb.SIDE_BUY
) -> epb.PlaceOrderRequest:
    return epb.PlaceOrderRequest(
        user_id=user, market=MARKET, side=side, type=cpb.ORDER_TYPE_LIMIT,
        price=price, quantity="1",
    )  # fmt: skip


def levels(update: object) -> list[tuple[str, str]]:
    return [(lv.price, lv.quantity) for lv in update.bids]  # type: ignore[attr-defined]


async def engine_bids(live: Live) -> list[tuple[str, str]]:
    depth = await live.stack.engine.stub.GetDepth(epb.GetDepthRequest(market=MARKET))
    return [(lv.price, lv.quantity) for lv in depth.bids]


async def book_of(hub: StreamHub) -> list[tuple[str, str]]:
    async with hub.subscription(Topic.parse(f"depth.{MARKET}")) as (snapshot, _):
        return levels(snapshot[0].depth)


async def test_a_diff_before_the_book_is_loaded_starts_a_resync(live: Live) -> None:
    await deposit(live.stack.engine.stub, 1, "INR", "1000")
    assert (await live.stack.engine.stub.PlaceOrder(bid("10"))).code == cpb.RESULT_CODE_OK
    await live.published()
    # The state a market is in when Redis delivers its first diff before it was listed.
    live.hub.markets[MARKET] = MarketCache(MARKET)
    assert (await live.stack.engine.stub.PlaceOrder(bid("11"))).code == cpb.RESULT_CODE_OK
    await live.published()
    async with asyncio.timeout(20):
        await live.hub.markets[MARKET].ready.wait()
    assert await book_of(live.hub) == await engine_bids(live) == [("11.00", "1"), ("10.00", "1")]


async def test_a_market_not_listed_yet_is_looked_up_for_a_subscriber(live: Live) -> None:
    await deposit(live.stack.engine.stub, 1, "INR", "1000")
    assert (await live.stack.engine.stub.PlaceOrder(bid("12"))).code == cpb.RESULT_CODE_OK
    await live.published()
    settings = stream_settings(live.stack.engine.address, live.redis_url)
    async with streaming(settings) as (hub, _):
        hub.markets.clear()  # as if the engine's market list had not come yet
        assert await book_of(hub) == await engine_bids(live) == [("12.00", "1")]
        with pytest.raises(UnknownMarket):
            async with hub.subscription(Topic.parse("depth.NOPE_INR")):
                pass


async def test_a_market_first_seen_on_the_bus_gets_its_recent_trades(live: Live) -> None:
    stub = live.stack.engine.stub
    await deposit(stub, 1, "INR", "1000")
    await deposit(stub, 2, "TATA", "10")

    async def trade(price: str) -> None:
        for user, side in ((1, cpb.SIDE_BUY), (2, cpb.SIDE_SELL)):
            assert (await stub.PlaceOrder(bid(price, user, side))).code == cpb.RESULT_CODE_OK

    for price in ("20", "21", "22"):
        await trade(price)
    await live.published()
    settings = stream_settings(live.stack.engine.address, live.redis_url)
    async with streaming(settings) as (hub, _):
        async with asyncio.timeout(20):
            while MARKET not in hub.markets or len(hub.markets[MARKET].trades) < 3:  # noqa: ASYNC110 - the hub loads in the background
                await asyncio.sleep(0.02)
        del hub.markets[MARKET]  # as if its first message had come before the engine's list
        await trade("23")
        async with asyncio.timeout(20):
            while MARKET not in hub.markets:  # noqa: ASYNC110 - the trade's message, from Redis
                await asyncio.sleep(0.02)
        async with hub.subscription(Topic.parse(f"trade.{MARKET}")) as (snapshot, sub):
            prices = [item.trade.price for item in snapshot]
            async with asyncio.timeout(20):
                while prices[-1:] != ["23.00"]:  # in the snapshot, or the next update
                    prices.append((await sub.next()).trade.price)
    assert prices == ["20.00", "21.00", "22.00", "23.00"]
