"""The gateway's fan-out of one batch: depth diffs of a topic merged into one diff that a
client's book applies to the same result, and one rendering shared by the connections
whose subscriptions are the same."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import grpc
import orjson
import pytest

from exchange.common.v1 import common_pb2 as cpb
from exchange.stream.v1 import stream_pb2 as spb
from exchange.stream.v1.stream_pb2_grpc import StreamServiceStub
from gateway_svc.connection import Connection
from gateway_svc.frames import data_json
from gateway_svc.subscriptions import parse_topic
from gateway_svc.upstream import Message, Upstreams, conflate, pending
from tests.stream.conftest import Live
from tradekit.book import Book

MARKET = "TATA_INR"
DEPTH, TRADE = f"depth.{MARKET}", f"trade.{MARKET}"


def depth(first: int, last: int, bids: dict[str, str], asks: dict[str, str]) -> Message:
    item = spb.MarketData(
        depth=spb.DepthUpdate(
            market=MARKET, first_update_id=first, last_update_id=last, ts_us=last * 10,
            bids=[cpb.PriceLevel(price=p, quantity=q) for p, q in bids.items()],
            asks=[cpb.PriceLevel(price=p, quantity=q) for p, q in asks.items()],
        )
    )  # fmt: skip
    return Message(DEPTH, last, data_json(item), item)


def trade(trade_id: int) -> Message:
    item = spb.MarketData(
        trade=spb.Trade(market=MARKET, trade_id=trade_id, price="100", quantity="1", seq=trade_id)
    )
    return Message(TRADE, trade_id, data_json(item), item)


def random_diffs(rng: random.Random, count: int) -> list[Message]:
    prices = [f"{p / 100:.2f}" for p in range(9_990, 10_010)]
    out = []
    for update_id in range(1, count + 1):
        levels = {side: {rng.choice(prices): str(rng.choice([0, 0, 1, 5, 12])) for _ in range(3)}
                  for side in ("b", "a")}  # fmt: skip
        out.append(depth(update_id, update_id, levels["b"], levels["a"]))
    return out


def book_after(diffs: list[Message]) -> Book:
    book = Book(MARKET)
    for message in diffs:
        book.apply(message.item.depth)
    return book


@pytest.mark.parametrize("seed", range(20))
def test_merged_diffs_build_the_same_book_as_each_diff_in_turn(seed: int) -> None:
    rng = random.Random(seed)
    diffs = random_diffs(rng, rng.randint(2, 30))
    [merged] = conflate(diffs)
    assert (merged.item.depth.first_update_id, merged.item.depth.last_update_id) == (
        1,
        len(diffs),
    )
    assert merged.seq == len(diffs)
    assert merged.item.depth.ts_us == diffs[-1].item.depth.ts_us
    by_one, at_once = book_after(diffs), book_after([merged])
    assert (at_once.bids, at_once.asks) == (by_one.bids, by_one.asks)
    sent = orjson.loads(merged.data)
    assert [Decimal(p) for p, _ in sent["b"]] == sorted((Decimal(p) for p, _ in sent["b"]),
                                                         reverse=True)  # fmt: skip
    assert [Decimal(p) for p, _ in sent["a"]] == sorted(Decimal(p) for p, _ in sent["a"])


def test_trades_are_never_merged_and_the_merged_diff_takes_the_last_diffs_place() -> None:
    d1, d2 = depth(1, 1, {"99.00": "1"}, {}), depth(2, 2, {"99.00": "0"}, {"101.00": "3"})
    t1, t2 = trade(1), trade(2)
    out = conflate([d1, t1, d2, t2])
    assert [m.topic for m in out] == [TRADE, DEPTH, TRADE]
    assert (out[0], out[2]) == (t1, t2)
    assert orjson.loads(out[1].data)["b"] == [["99.00", "0"]]
    lone = [t1, d1, t2]
    assert conflate(lone) is lone  # nothing to merge: the batch as it was


def sse_events(raw: bytes) -> list[Any]:
    return [orjson.loads(event.split(b"data: ", 1)[1]) for event in raw.split(b"\n\n") if event]


@pytest.fixture
async def upstreams(live: Live) -> AsyncIterator[Upstreams]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{live.stream_port}") as channel:
        upstreams = Upstreams(StreamServiceStub(channel))
        yield upstreams
        await upstreams.close()


async def test_connections_with_the_same_subscriptions_share_one_rendering(
    upstreams: Upstreams,
) -> None:
    markets = {MARKET}

    def connection(*names: str) -> Connection:
        conn = Connection(upstreams, queue_frames=100, sse=True)
        for name in names:
            conn.subscribe(parse_topic(name, None, markets))
        return conn

    a, b = connection(DEPTH, TRADE), connection(TRADE, DEPTH)  # same set, other order
    c = connection(f"depth@{MARKET}", DEPTH)  # both names of one topic
    d = connection(TRADE)
    batch = [depth(1, 1, {"99.00": "1"}, {}), trade(1), depth(2, 2, {}, {"101.00": "2"})]
    by_topic = pending(batch)
    rendered: dict[object, tuple[bytes, int]] = {}
    assert [conn.send(by_topic, rendered) for conn in (a, b, c, d)] == [2, 2, 2, 1]
    assert len(rendered) == 3
    sent = {name: conn.take() for name, conn in zip("abcd", (a, b, c, d), strict=True)}
    assert sent["a"] == sent["b"]
    events = sse_events(sent["a"])
    assert [(e["stream"], e["data"]["e"]) for e in events] == [(TRADE, "trade"), (DEPTH, "depth")]
    assert (events[1]["data"]["U"], events[1]["data"]["u"]) == (1, 2)
    streams = [e["stream"] for e in sse_events(sent["c"])]
    assert streams == [DEPTH, f"depth@{MARKET}"]  # one frame per name, in order of name
    assert b'"e":"depth"' not in sent["d"]
    a.unsubscribe(TRADE)
    assert a.profile != b.profile


async def test_private_streams_of_two_users_never_share_a_rendering(upstreams: Upstreams) -> None:
    """The same names (`account.orderUpdate`) read each user's own topic, so the two
    connections' profiles differ and each gets only its own orders."""
    alice, bob = (Connection(upstreams, queue_frames=100, sse=True) for _ in range(2))
    alice.subscribe(parse_topic("account.orderUpdate", 1, {MARKET}))
    bob.subscribe(parse_topic("account.orderUpdate", 2, {MARKET}))
    item = spb.MarketData(
        order_update=spb.OrderUpdate(order=cpb.Order(order_id=5, user_id=1, market=MARKET))
    )
    by_topic = pending([Message("orders.1", 1, data_json(item), item)])
    rendered: dict[object, tuple[bytes, int]] = {}
    assert (alice.send(by_topic, rendered), bob.send(by_topic, rendered)) == (1, 0)
    assert bob.take() == b""
    [event] = sse_events(alice.take())
    assert (event["stream"], event["data"]["i"]) == ("account.orderUpdate", "5")
