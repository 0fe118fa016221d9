"""Interval frames (gateway_svc/cadence.py): a random market history is published into the
gateway's cadences and cut into batches at random points, as the interval's timer would cut
it. For every batch, each subscriber's book still follows one unbroken `U`/`u` chain and ends
equal to applying every diff, each trade arrives once and in order whatever the boundaries,
ticker and bookTicker carry only their latest value, a candle its latest state per open
time, and two subscribers of the same streams are written the same bytes. A real-time
subscriber gets every message.

No stream_svc answers these upstreams: what the connections get is only what the test
publishes."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Hashable
from decimal import Decimal
from typing import Any

import grpc
import orjson
import pytest

from exchange.common.v1 import common_pb2 as cpb
from exchange.stream.v1 import stream_pb2 as spb
from exchange.stream.v1.stream_pb2_grpc import StreamServiceStub
from gateway_svc.cadence import Cadence, requested_interval
from gateway_svc.connection import Connection
from gateway_svc.errors import ApiError
from gateway_svc.frames import data_json
from gateway_svc.subscriptions import parse_topic
from gateway_svc.upstream import Message, Pending, Upstreams, pending

MARKET = "TATA_INR"
INTERVAL_MS = 100
STREAMS = [f"depth.{MARKET}", f"trade.{MARKET}", f"ticker.{MARKET}",
           f"bookTicker.{MARKET}", f"kline.1m.{MARKET}"]  # fmt: skip
PRICES = [f"{p / 100:.2f}" for p in range(9_990, 10_010)]


def message(topic: str, seq: int, item: spb.MarketData) -> Message:
    return Message(topic, seq, data_json(item), item)


def history(rng: random.Random, length: int) -> list[Message]:
    """Engine-ordered market data of one market: depth diffs with a chain of ids, trades with
    consecutive ids, tickers, best bid/ask and a candle that rolls over to the next minute."""
    out, trade_id, open_time, last_depth = [], 0, 60_000_000, 0
    for seq in range(1, length + 1):
        kind = rng.choice(["depth", "depth", "trade", "trade", "ticker", "book", "kline"])
        if kind == "depth":
            levels = {side: [cpb.PriceLevel(price=rng.choice(PRICES),
                                            quantity=str(rng.choice([0, 1, 5])))
                             for _ in range(2)] for side in "ba"}  # fmt: skip
            # As the gateway's upstream passes them on: each starts where the last one ended.
            depth = spb.DepthUpdate(market=MARKET, first_update_id=last_depth + 1,
                                    last_update_id=seq,
                                    bids=levels["b"], asks=levels["a"], ts_us=seq)  # fmt: skip
            last_depth = seq
            out.append(message(STREAMS[0], seq, spb.MarketData(depth=depth)))
        elif kind == "trade":
            trade_id += 1
            trade = spb.Trade(market=MARKET, trade_id=trade_id, price="100.00", quantity="1",
                              seq=seq, ts_us=seq)  # fmt: skip
            out.append(message(STREAMS[1], seq, spb.MarketData(trade=trade)))
        elif kind == "ticker":
            ticker = spb.Ticker(market=MARKET, last=str(seq), trades=seq, seq=seq, ts_us=seq)
            out.append(message(STREAMS[2], seq, spb.MarketData(ticker=ticker)))
        elif kind == "book":
            book = spb.BookTicker(market=MARKET, bid_price=f"{seq}.00", bid_quantity="1",
                                  seq=seq, ts_us=seq)  # fmt: skip
            out.append(message(STREAMS[3], seq, spb.MarketData(book_ticker=book)))
        else:
            open_time += 60_000_000 * (rng.random() < 0.3)
            kline = spb.Kline(market=MARKET, interval_s=60, open_time_us=open_time,
                              close_time_us=open_time + 60_000_000, close=str(seq),
                              seq=seq, ts_us=seq)  # fmt: skip
            out.append(message(STREAMS[4], seq, spb.MarketData(kline=kline)))
    return out


@pytest.fixture
async def upstreams() -> AsyncIterator[Upstreams]:
    async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:
        made = Upstreams(StreamServiceStub(channel), INTERVAL_MS)
        yield made
        await made.close()


def connection(upstreams: Upstreams, names: list[str], interval_ms: int) -> Connection:
    conn = Connection(upstreams, 1_000_000, sse=True, interval_ms=interval_ms)
    for name in names:
        conn.subscribe(parse_topic(name, None, {MARKET}))
    return conn


def events(raw: bytes) -> list[tuple[str, Any]]:
    out = []
    for event in raw.split(b"\n\n"):
        if event:
            body = orjson.loads(event.split(b"data: ", 1)[1])
            out.append((body["stream"], body["data"]))
    return out


def apply(book: dict[str, dict[Decimal, str]], data: dict[str, Any]) -> None:
    for side in "ba":
        for price, quantity in data[side]:
            if Decimal(quantity) == 0:
                book[side].pop(Decimal(price), None)
            else:
                book[side][Decimal(price)] = quantity


@pytest.mark.parametrize("seed", range(12))
async def test_interval_batches_rebuild_the_book_and_deliver_every_trade_once(
    upstreams: Upstreams, seed: int
) -> None:
    rng = random.Random(seed)
    sent = history(rng, rng.randint(20, 200))
    a = connection(upstreams, STREAMS, INTERVAL_MS)
    b = connection(upstreams, list(reversed(STREAMS)), INTERVAL_MS)  # same set, other order
    live = connection(upstreams, STREAMS, 0)  # ?interval=0
    cut = sorted(rng.sample(range(1, len(sent)), rng.randint(1, 8)))
    batches = [sent[i:j] for i, j in zip([0, *cut], [*cut, len(sent)], strict=True)]

    book_by_frames: dict[str, dict[Decimal, str]] = {"b": {}, "a": {}}
    previous_u, trades, live_frames = 0, [], []
    for batch in batches:
        for m in batch:
            for cadence in upstreams.cadences.values():
                cadence.publish(m)
        for cadence in upstreams.cadences.values():
            cadence.flush()  # the interval's end
        got = a.take()
        assert got == b.take()  # the same bytes for the same streams
        frames = events(got)
        live_frames += events(live.take())
        kinds = [m.item.WhichOneof("body") for m in batch]
        depth = [d for s, d in frames if s == STREAMS[0]]
        assert len(depth) == (1 if "depth" in kinds else 0)  # one merged diff per interval
        for d in depth:
            assert d["U"] == previous_u + 1
            previous_u = d["u"]
            apply(book_by_frames, d)
        trades += [d["t"] for s, d in frames if s == STREAMS[1]]
        for stream, kind in ((STREAMS[2], "ticker"), (STREAMS[3], "book_ticker")):
            latest = [m for m in batch if m.item.WhichOneof("body") == kind][-1:]
            assert [d for s, d in frames if s == stream] == [orjson.loads(m.data) for m in latest]
        candles = {m.item.kline.open_time_us: orjson.loads(m.data)
                   for m in batch if m.topic == STREAMS[4]}  # fmt: skip
        assert [d for s, d in frames if s == STREAMS[4]] == list(candles.values())

    every: dict[str, dict[Decimal, str]] = {"b": {}, "a": {}}
    for m in sent:
        if m.topic == STREAMS[0]:
            apply(every, orjson.loads(m.data))
    assert book_by_frames == every
    assert trades == [m.item.trade.trade_id for m in sent if m.topic == STREAMS[1]]
    # Real time: every ticker, best bid/ask and candle update, as before interval frames.
    for stream in STREAMS[2:]:
        assert [d for s, d in live_frames if s == stream] == [
            orjson.loads(m.data) for m in sent if m.topic == stream
        ]


async def test_a_subscriber_gets_only_its_own_cadence(upstreams: Upstreams) -> None:
    """A message goes out once per subscriber: at the interval's end for one that did not
    ask, not also with the real-time batch that a real-time subscriber of it triggers."""
    slow = connection(upstreams, STREAMS[1:2], INTERVAL_MS)
    fast = connection(upstreams, STREAMS[1:2], 0)
    trade = spb.Trade(market=MARKET, trade_id=1, price="1", quantity="1", seq=1)
    m = message(STREAMS[1], 1, spb.MarketData(trade=trade))
    for cadence in upstreams.cadences.values():
        cadence.publish(m)
    upstreams.cadences[0].flush()
    assert [d["t"] for _, d in events(fast.take())] == [1]
    assert slow.take() == b""
    upstreams.cadences[INTERVAL_MS].flush()
    assert [d["t"] for _, d in events(slow.take())] == [1]
    assert fast.take() == b""
    slow.close()
    assert STREAMS[1] not in upstreams.cadences[INTERVAL_MS].listeners


def test_a_client_may_ask_for_real_time_or_the_gateways_interval_only() -> None:
    assert requested_interval(None, 100) == 100
    assert requested_interval("0", 100) == 0
    assert requested_interval("100", 100) == 100
    for bad in ("5", "-1", "1e3", "", "fast", "0100", "\u0661\u0660\u0660", "9" * 5000):
        with pytest.raises(ApiError) as raised:
            requested_interval(bad, 100)
        assert (raised.value.status, raised.value.code) == (400, "INVALID_INTERVAL")


@pytest.mark.parametrize("seed", range(8))
async def test_batched_trades_come_one_frame_per_batch_each_trade_once(
    upstreams: Upstreams, seed: int
) -> None:
    """`trade@<M>@batch` (gateway_svc/batches.py): per batch, at the interval and in real
    time, one frame holding that batch's trades in order, the same bytes for every subscriber;
    across the batches every trade once, as the default one-trade frames carry them."""
    rng = random.Random(seed)
    sent = history(rng, rng.randint(20, 200))
    batched = f"trade@{MARKET}@batch"
    a = connection(upstreams, [batched], INTERVAL_MS)
    b = connection(upstreams, [batched, f"depth.{MARKET}"], INTERVAL_MS)
    plain = connection(upstreams, [f"trade@{MARKET}"], INTERVAL_MS)
    live = connection(upstreams, [batched], 0)
    cut = sorted(rng.sample(range(1, len(sent)), rng.randint(1, 8)))
    batches = [sent[i:j] for i, j in zip([0, *cut], [*cut, len(sent)], strict=True)]

    got: dict[str, list[int]] = {"a": [], "b": [], "plain": [], "live": []}
    for batch in batches:
        for m in batch:
            for cadence in upstreams.cadences.values():
                cadence.publish(m)
        upstreams.cadences[INTERVAL_MS].flush()  # the interval's end
        a_frames = a.take()
        ids = [m.item.trade.trade_id for m in batch if m.topic == STREAMS[1]]
        frames = events(a_frames)
        assert [len(frames)] == [1 if ids else 0]
        assert [[t["t"] for t in d] for _, d in frames] == ([ids] if ids else [])
        assert all(s == batched for s, _ in frames)
        last = [m.seq for m in batch if m.topic == STREAMS[1]][-1:]
        assert [f"id: {seq}\n".encode() for seq in last] == [
            f[: f.index(b"\n") + 1] for f in a_frames.split(b"\n\n") if f
        ]  # as an SSE event: Last-Event-ID resumes after the batch
        b_frames = [f for f in a_frames.split(b"\n\n") if f]
        assert [f for f in b.take().split(b"\n\n") if b'"stream":"trade' in f] == b_frames
        got["a"] += ids
        got["plain"] += [d["t"] for _, d in events(plain.take())]
        upstreams.cadences[0].flush()  # the real-time batch, cut at the same place
        for _, d in events(live.take()):
            got["live"] += [t["t"] for t in d]
    every = [m.item.trade.trade_id for m in sent if m.topic == STREAMS[1]]
    assert got["a"] == got["plain"] == got["live"] == every


class DeferredWrites:
    """A listener whose writes the loop does after the flush's callback, as uvloop does a
    transport's; they take longer than the interval, as to thousands of clients."""

    interval_ms = INTERVAL_MS
    WRITE_S = 1.5 * INTERVAL_MS / 1000

    def __init__(self, cadence: Cadence, then: Message) -> None:
        self.cadence, self.then = cadence, then
        self.sent: list[tuple[float, list[int]]] = []  # loop time, seqs of the batch
        self.written_at = 0.0
        self.got_two = asyncio.Event()

    def send(self, pending: Pending, rendered: dict[Hashable, tuple[bytes, int]]) -> int:
        loop = asyncio.get_running_loop()
        self.sent.append((loop.time(), [m.seq for items in pending.values() for _, m in items]))
        if len(self.sent) == 1:
            loop.call_soon(self.write)
        else:
            self.got_two.set()
        return 1

    def write(self) -> None:
        time.sleep(self.WRITE_S)  # the loop busy writing
        self.written_at = asyncio.get_running_loop().time()
        self.cadence.publish(self.then)  # read from the upstream right after

    def failed(self, topic: str, code: str, message: str) -> None:
        raise AssertionError(f"{topic} failed: {message}")


async def test_a_flush_lasts_until_the_loop_has_done_its_writes() -> None:
    """A message read right after a flush's writes waits for the next batch, due a period
    after them or as long as the flush and its writes took: not sent alone at once, which
    made every batch of a busy gateway hold one message."""
    trades = [spb.Trade(market=MARKET, trade_id=t, price="1", quantity="1", seq=t) for t in (1, 2)]
    first, then = (message(STREAMS[1], t.seq, spb.MarketData(trade=t)) for t in trades)
    cadence = Cadence(INTERVAL_MS / 1000, pending, merge_state=True)
    listener = DeferredWrites(cadence, then)
    cadence.add(STREAMS[1], listener)
    cadence.publish(first)
    async with asyncio.timeout(30):
        await listener.got_two.wait()
    (flushed_at, one), (next_at, two) = listener.sent
    assert (one, two) == ([1], [2])
    assert next_at >= listener.written_at + (listener.written_at - flushed_at)
    cadence.close()


class Recorder:
    """A listener that keeps the seqs of each batch it is sent, or raises on each send."""

    interval_ms = 0

    def __init__(self, *, broken: bool = False) -> None:
        self.broken = broken
        self.seqs: list[int] = []
        self.got = asyncio.Event()

    def send(self, pending: Pending, rendered: dict[Hashable, tuple[bytes, int]]) -> int:
        if self.broken:
            raise RuntimeError("a listener's bug")
        self.seqs += [m.seq for items in pending.values() for _, m in items]
        self.got.set()
        return 1

    def failed(self, topic: str, code: str, message: str) -> None:
        raise AssertionError(f"{topic} failed: {message}")


async def test_a_listener_that_raises_does_not_stop_the_cadence(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug in one listener's send is that listener's: every batch still goes out to the
    others, whichever of them the flush comes to first, and the bug is logged."""
    cadence = Cadence(0.0, pending, merge_state=False)
    broken, healthy = Recorder(broken=True), Recorder()
    cadence.add(STREAMS[1], broken)
    cadence.add(STREAMS[1], healthy)
    for seq in (1, 2, 3):
        trade = spb.Trade(market=MARKET, trade_id=seq, price="1", quantity="1", seq=seq)
        healthy.got.clear()
        cadence.publish(message(STREAMS[1], seq, spb.MarketData(trade=trade)))
        async with asyncio.timeout(30):
            await healthy.got.wait()
    assert healthy.seqs == [1, 2, 3]
    assert sum("failed to take a batch" in r.message for r in caplog.records) == 3
    cadence.close()
