"""Batched trades end to end (gateway_svc/batches.py): engine -> publisher -> Redis ->
stream_svc -> gateway -> client. A `trade@<M>@batch` subscriber, at the interval and in
real time, gets every trade exactly once and in order, in frames whose `data` is a list,
the same trades a default subscriber gets one per frame; a default subscriber's frames are
unchanged; a stream option other than `trade@<M>@batch` is refused and subscribes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.ledger.events import all_events
from tests.ledger.trading import Trader
from tests.stream.conftest import Live
from tests.stream.test_ws import next_json, subscribe

MARKET = "TATA_INR"
BATCHED = f"trade@{MARKET}@batch"


async def trade_ids(ws: aiohttp.ClientWebSocketResponse, stream: str, want: int) -> list[Any]:
    """The frames of `stream` until they hold `want` trades."""
    frames: list[Any] = []
    held = 0
    async with asyncio.timeout(60):
        while held < want:
            frame = await next_json(ws)
            assert frame["stream"] == stream, frame
            frames.append(frame["data"])
            held += len(frame["data"]) if isinstance(frame["data"], list) else 1
    return frames


async def test_a_batched_subscriber_gets_every_trade_once_in_order(live: Live) -> None:
    trader = Trader(live.stack.engine.stub, seed=11)
    await trader.fund()
    await trader.run(50)
    await live.published()
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(live.ws_url) as plain,
        session.ws_connect(live.ws_url) as batched,
        session.ws_connect(live.ws_url + "?interval=0") as real_time,
    ):
        assert await subscribe(plain, f"trade@{MARKET}") == {"id": 7, "result": None}
        for ws in (batched, real_time):
            assert await subscribe(ws, BATCHED) == {"id": 7, "result": None}
        start_seq = live.stack.engine.runtime.engine.seq
        await trader.run(300)
        await live.published()
        events = await all_events(live.stack.engine.stub, live.stack.engine.runtime.engine.seq)
        trades = [
            e.trade_executed.fill.trade_id
            for e in events[start_seq:]
            if e.HasField("trade_executed") and e.trade_executed.fill.market == MARKET
        ]
        assert trades
        one_each = await trade_ids(plain, f"trade@{MARKET}", len(trades))
        by_interval = await trade_ids(batched, BATCHED, len(trades))
        by_real_time = await trade_ids(real_time, BATCHED, len(trades))

    # The default: one trade per frame, a JSON object, as before.
    assert all(isinstance(d, dict) and d["e"] == "trade" for d in one_each)
    assert [d["t"] for d in one_each] == trades
    for frames in (by_interval, by_real_time):
        assert all(isinstance(d, list) and d for d in frames)  # never an empty batch
        flat = [t for d in frames for t in d]
        assert [t["t"] for t in flat] == trades  # every trade once, in order, no gap
        assert flat == one_each  # the same payloads as one per frame


async def test_a_bad_stream_option_is_refused_and_subscribes_nothing(live: Live) -> None:
    bad = [f"trade.{MARKET}@batch", f"depth@{MARKET}@batch", f"ticker@{MARKET}@batch",
           f"trade@{MARKET}@batched", f"trade@{MARKET}@BATCH", f"trade@{MARKET}@",
           f"trade@{MARKET}@batch@batch", f"trade@{MARKET}@100ms",
           f"kline@1m.{MARKET}@batch"]  # fmt: skip
    trader = Trader(live.stack.engine.stub, seed=12)
    await trader.fund()
    async with aiohttp.ClientSession() as session, session.ws_connect(live.ws_url) as ws:
        for topic in bad:
            reply = await subscribe(ws, topic)
            assert reply["id"] == 7
            assert (reply["error"]["code"], reply["error"]["name"]) == (4006, "INVALID_STREAM")
        # Nothing was subscribed: every frame of the trading after a sentinel subscription is
        # the sentinel's (a wrong subscription's frames leave in the same flushes).
        assert await subscribe(ws, f"trade@{MARKET}") == {"id": 7, "result": None}
        start_seq = live.stack.engine.runtime.engine.seq
        await trader.run(100)
        await live.published()
        events = await all_events(live.stack.engine.stub, live.stack.engine.runtime.engine.seq)
        trades = [
            e
            for e in events[start_seq:]
            if e.HasField("trade_executed") and e.trade_executed.fill.market == MARKET
        ]
        assert trades
        frames = await trade_ids(ws, f"trade@{MARKET}", len(trades))  # checks each stream
        assert all(isinstance(d, dict) for d in frames)
    for topic in bad[:3]:
        response = await live.stack.client.get(f"/api/v1/stream?topics={topic}")
        assert response.status == 400
        assert (await response.json())["code"] == "INVALID_STREAM"
