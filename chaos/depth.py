"""A WebSocket client keeping order books and following trades through the faults, as a
careful client does. The suite runs one per cadence: the gateway's interval frames (its
default) and real time (`?interval=0`), each with one trade a frame and with batched trades.

It subscribes to `depth.<M>` and `trade.<M>` (or `trade@<M>@batch`: every trade of a batch
in one frame, which must never be empty), then takes REST depth (`lastUpdateId`) and
applies every diff after it. Diffs on one connection form a chain (each `U` is the
previous `u` + 1). Where updates were lost (stream_svc or Redis lost messages, the
publisher started over) the gateway sends a diff that restarts the chain (`U` = `u` + 1),
and the client takes REST depth again: counted as a restart. Any other break is a gap,
which the gateway promises never to show, so it is counted as a finding and the book is
taken again from REST. So is an error frame after the subscription was acknowledged (the
gateway gave the stream up), after which the client connects again. When the connection
drops (the gateway died) it reconnects and starts over: a reconnect, not a gap. The trade
ids of each connection go to a `TradeLog`, a batch frame's in its order, judged against the
engine's history after each trial (chaos/trades.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
import orjson

from chaos.client import request
from chaos.record import Outcome
from chaos.trades import TradeLog

log = logging.getLogger(__name__)

Levels = list[tuple[Decimal, Decimal]]
BATCH = "batch"  # the trade stream's option: trade@<M>@batch


class Reconnect(Exception):
    """The connection is no use any more (closed, or the subscription was refused)."""


@dataclass
class Book:
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    last: int = -1  # the book includes every event up to this sequence number; -1: no book
    previous_u: int | None = None  # the last diff's `u` on this connection

    def levels(self) -> tuple[Levels, Levels]:
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())


def rest_levels(depth: dict[str, Any]) -> tuple[Levels, Levels]:
    def side(rows: list[list[str]]) -> dict[Decimal, Decimal]:
        return {Decimal(p): Decimal(q) for p, q in rows}

    book = Book(side(depth["bids"]), side(depth["asks"]))
    return book.levels()


class DepthWatcher:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        markets: list[str],
        query: str = "",
        batched: bool = False,
    ) -> None:
        self.http = http
        self.base_url = base_url
        self.markets = markets
        self.query = query  # the connection's, such as "?interval=0"
        self.batched = batched  # trades as trade@<M>@batch
        self.trade_logs: list[TradeLog] = []  # one per connection
        self.books = {m: Book() for m in markets}
        self.connections = 0
        self.resyncs = 0
        self.restarts = 0  # diffs that restarted the chain after lost updates
        self.gaps = 0
        self.errors: list[str] = []  # error frames after an acknowledged subscription
        self.frames = 0
        self.trade_frames = 0
        self.empty_batches = 0  # batch frames without a trade: the gateway never sends one
        self.last_frame = time.monotonic()  # when a depth frame last came

    async def run(self) -> None:
        """Keep the books until cancelled."""
        while True:
            # The gateway went away, or a close frame came (not JSON): connect again.
            with contextlib.suppress(
                Reconnect, aiohttp.ClientError, TimeoutError, OSError, ValueError
            ):
                await self._session()
            await asyncio.sleep(0.3)

    async def depth(self, market: str) -> dict[str, Any] | None:
        answer = await request(
            self.http, "GET", f"{self.base_url}/api/v1/depth", {"symbol": market}
        )
        return answer.body if answer.outcome is Outcome.ACKED else None

    async def _session(self) -> None:
        self.books = {m: Book() for m in self.markets}  # nothing is trusted across connections
        url = self.base_url.replace("http://", "ws://") + "/ws" + self.query
        async with self.http.ws_connect(url, heartbeat=10) as ws:
            topics = [topic for m in self.markets for topic in self.topics(m)]
            await ws.send_str(
                orjson.dumps({"method": "SUBSCRIBE", "params": topics, "id": 1}).decode()
            )
            ack = orjson.loads((await ws.receive(timeout=15)).data)
            if ack != {"id": 1, "result": None}:
                raise Reconnect(f"subscription refused: {ack}")
            self.connections += 1
            trades = TradeLog(self.connections)
            self.trade_logs.append(trades)
            for market in self.markets:
                await self._resync(market)
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                frame = orjson.loads(message.data)
                if "error" in frame:
                    self.errors.append(str(frame["error"])[:200])
                    raise Reconnect(f"stream given up: {frame['error']}")
                stream = frame.get("stream", "")
                if stream.startswith("depth."):
                    self.frames += 1
                    self.last_frame = time.monotonic()
                    await self._apply(stream.removeprefix("depth."), frame["data"])
                elif stream.startswith("trade"):
                    self.trade_frames += 1
                    self.trades(stream, frame["data"], trades)
            raise Reconnect("connection closed")

    def topics(self, market: str) -> tuple[str, str]:
        trades = f"trade@{market}@{BATCH}" if self.batched else f"trade.{market}"
        return f"depth.{market}", trades

    def trades(self, stream: str, data: Any, log: TradeLog) -> None:
        """One trade frame's ids into the connection's log: `trade.<M>`'s one, or every one
        of a `trade@<M>@batch` frame in its order."""
        if not self.batched:
            log.add(stream.removeprefix("trade."), int(data["t"]))
            return
        market = stream.removeprefix("trade@").removesuffix(f"@{BATCH}")
        if not data:
            self.empty_batches += 1
        for trade in data:
            log.add(market, int(trade["t"]))

    async def _resync(self, market: str) -> None:
        """Take the market's book from REST again; the diffs after it follow."""
        while (depth := await self.depth(market)) is None:  # noqa: ASYNC110 - polling the gateway
            await asyncio.sleep(0.3)
        book = self.books[market]
        snapshot = rest_levels(depth)
        book.bids, book.asks = dict(snapshot[0]), dict(snapshot[1])
        book.last = int(depth["lastUpdateId"])
        self.resyncs += 1

    async def _apply(self, market: str, diff: dict[str, Any]) -> None:
        book = self.books[market]
        first, last = int(diff["U"]), int(diff["u"])
        previous, book.previous_u = book.previous_u, last
        if first > last:  # the chain restarts: updates were lost, the book is taken again
            self.restarts += 1
            await self._resync(market)
            return
        if previous is not None and first != previous + 1:
            self.gaps += 1
            log.error("depth gap on %s: U=%d after u=%d", market, first, previous)
            await self._resync(market)
            return
        if last <= book.last:
            return  # already in the REST snapshot
        if first > book.last + 1:  # diffs between the snapshot and this one never came
            await self._resync(market)
            return
        for levels, side in ((diff["b"], book.bids), (diff["a"], book.asks)):
            for price, quantity in levels:
                if Decimal(quantity) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = Decimal(quantity)
        book.last = last
