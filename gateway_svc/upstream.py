"""One StreamService subscription per topic, shared by every client of this gateway.

An `Upstream` opens its gRPC stream when its first listener arrives and closes it when
the last one leaves. It renders each message once and hands the bytes to its listeners.
If stream_svc goes away, it reconnects and bridges the outage for its listeners: the trades
missed meanwhile are sent from the snapshot's recent trades, and the depth book moves to
the fresh snapshot by a diff that restarts the id chain (`Book.restart_to`: clients that
check the chain take REST depth again, since the updates in between are lost). So does a
snapshot stream_svc sends after its own resync. A listener that only joins later gets the
current ticker, best bid/ask or candle at once. A `Prepare` hook may hold a message back
while it reads what a dialect needs to render it (a rare lookup; the topic's later messages
wait behind it, so the order stays).

Recent frames are kept per topic (with their engine sequence numbers) so that an SSE
client reconnecting with Last-Event-ID can resume.

Fan-out is the gateway's heaviest work (every message times every client), so messages
are handed out in batches, per cadence (cadence.py): every interval for most clients, within
a few milliseconds for those that asked for real time. Each client gets all of its frames
of a batch, across topics, in one write, and clients with the same subscriptions get the
same bytes, built once per batch. Consecutive depth diffs of one topic within a batch become
one diff (levels carry absolute quantities, so the last value of a level is all a client
needs, and U..u still continues the id chain; a diff that restarts the chain is never
merged). Trades and private events go out one per frame, every one of them (or, for a
`trade@<M>@batch` subscriber, a batch's trades in one frame: batches.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Protocol

import grpc

from exchange.stream.v1 import stream_pb2 as spb
from gateway_svc.cadence import DEFAULT_INTERVAL_MS, FLUSH_S, Cadence
from gateway_svc.frames import data_json, frame, sse_event, ws_text
from tradekit.book import Book, Gap, merged, restarts_chain
from tradekit.topics import Topic

if TYPE_CHECKING:
    from exchange.stream.v1.stream_pb2_grpc import StreamServiceAsyncStub

log = logging.getLogger(__name__)

# What must be read before a message can be rendered: None (nearly always), or the reading.
Prepare = Callable[[spb.MarketData], Awaitable[None] | None]

HISTORY = 1000  # messages kept per topic for SSE resumption
LINGER_S = 30.0  # an upstream outlives its last listener this long


class Message:
    """One upstream message for all listeners: its payload rendered once, and each distinct
    frame (per stream name, as a WebSocket frame or an SSE event) built once on the wire
    however many clients get it."""

    __slots__ = ("_frames", "data", "item", "seq", "topic")

    def __init__(self, topic: str, seq: int, data: bytes, item: spb.MarketData) -> None:
        self.topic, self.seq, self.data, self.item = topic, seq, data, item
        self._frames: dict[Hashable, bytes] = {}

    def cached(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        """What `build` makes of this message, made once for every listener that asks with
        `key` (another dialect's frames)."""
        out = self._frames.get(key)
        if out is None:
            out = self._frames[key] = build()
        return out

    def frame(self, stream: str, sse: bool) -> bytes:
        key = (stream, sse)
        out = self._frames.get(key)
        if out is None:
            payload = frame(stream, self.data)
            out = sse_event(payload, self.seq) if sse else ws_text(payload)
            self._frames[key] = out
        return out


# A batch as listeners read it: by topic, its messages with their places in the batch.
Pending = Mapping[str, list[tuple[int, Message]]]


class Listener(Protocol):
    interval_ms: int  # its cadence: 0 is real time

    def send(self, pending: Pending, rendered: dict[Hashable, tuple[bytes, int]]) -> int:
        """Sends its frames of the batch in one write and returns how many; `rendered` (one
        per batch) shares the bytes among listeners whose subscriptions are the same."""

    def failed(self, topic: str, code: str, message: str) -> None: ...


def conflate(batch: list[Message]) -> list[Message]:
    """The batch with each run of consecutive depth diffs of a topic (each `U` the previous
    `u` + 1) merged into one, at the place of the last of them. A diff that restarts the
    chain stays alone, so that a client can tell it from updates lost by mistake."""
    runs: dict[str, list[list[Message]]] = {}
    run_of: dict[int, list[Message]] = {}  # id(message) -> its run
    for message in batch:
        if message.item.WhichOneof("body") != "depth":
            continue
        of_topic = runs.setdefault(message.topic, [])
        d = message.item.depth
        before = of_topic[-1][-1].item.depth if of_topic else None
        if (
            before is not None
            and before.last_update_id + 1 == d.first_update_id
            and not restarts_chain(before)
        ):
            of_topic[-1].append(message)
        else:
            of_topic.append([message])
        run_of[id(message)] = of_topic[-1]
    if all(len(run) == 1 for of_topic in runs.values() for run in of_topic):
        return batch
    out: list[Message] = []
    for message in batch:
        run = run_of.get(id(message))
        if run is None or len(run) == 1:
            out.append(message)
        elif message is run[-1]:
            out.append(merged_depth(run))
    return out


def pending(batch: list[Message]) -> dict[str, list[tuple[int, Message]]]:
    """The batch, conflated, as its listeners read it (`Pending`)."""
    out: dict[str, list[tuple[int, Message]]] = {}
    for place, message in enumerate(conflate(batch)):
        out.setdefault(message.topic, []).append((place, message))
    return out


def merged_depth(messages: list[Message]) -> Message:
    """One message equal to applying `messages` (consecutive diffs of one topic) in turn."""
    depth = merged([message.item.depth for message in messages])
    item = spb.MarketData(depth=depth)
    return Message(messages[-1].topic, depth.last_update_id, data_json(item), item)


def item_seq(item: spb.MarketData) -> int:
    kind = item.WhichOneof("body")
    if kind == "depth":
        return item.depth.last_update_id
    return int(getattr(item, kind or "").seq)


class Upstream:
    def __init__(
        self,
        topic: Topic,
        stub: StreamServiceAsyncStub,
        on_idle: Callable[[Upstream], None],
        publish: Callable[[Upstream, Message], None],
        prepare: Prepare | None = None,
    ) -> None:
        self.topic = topic
        self.stub = stub
        self._publish = publish
        self._prepare = prepare
        self.listeners: set[Listener] = set()
        self.book: Book | None = None
        self.latest: Message | None = None  # state topics: the current state
        self.history: deque[Message] = deque(maxlen=HISTORY)
        self._last_trade_id = 0
        self._calls = 0  # subscriptions made so far; after the first, recent trades were missed
        self._on_idle = on_idle
        self._task: asyncio.Task[None] | None = None
        self._linger: asyncio.TimerHandle | None = None
        self.connected = asyncio.Event()  # a call is open: every update from now will come

    async def wait_ready(self, seconds: float) -> None:
        """Wait (at most `seconds`) until the stream is open, so that a client told
        "subscribed" gets every change after that moment."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.connected.wait()

    def add(self, listener: Listener) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self.listeners.add(listener)
        if self.latest is not None:
            listener.send({self.topic.name: [(0, self.latest)]}, {})
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"upstream {self.topic.name}")

    def remove(self, listener: Listener) -> None:
        """Drops `listener`; the last one leaving closes the stream after LINGER_S, so that a
        client reconnecting meanwhile (SSE's Last-Event-ID) finds what it missed."""
        self.listeners.discard(listener)
        if not self.listeners and self._linger is None:
            self._linger = asyncio.get_running_loop().call_later(LINGER_S, self._close_if_idle)

    def _close_if_idle(self) -> None:
        self._linger = None
        if not self.listeners:
            self.close()

    def close(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._on_idle(self)

    def since(self, seq: int) -> list[Message] | None:
        """Messages after `seq`, or None when `seq` is older than what is kept."""
        if not self.history or self.history[0].seq > seq + 1:
            return None
        return [m for m in self.history if m.seq > seq]

    async def _run(self) -> None:
        delay = 0.1
        while self.listeners:
            call = self.stub.Subscribe(spb.SubscribeRequest(topic=self.topic.name))
            self._calls += 1
            try:
                await call.initial_metadata()  # sent once stream_svc has registered us
                delay = 0.1
                self.connected.set()
                async for item in call:
                    if self._prepare is not None and (reading := self._prepare(item)) is not None:
                        await reading
                    self._receive(item)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    for listener in list(self.listeners):
                        listener.failed(self.topic.name, "INVALID_STREAM", exc.details() or "")
                    self.listeners.clear()
                    break
                log.info("stream upstream lost", extra={"topic": self.topic.name,
                                                        "error": exc.code().name})  # fmt: skip
            except Gap:
                log.warning("stream gap: resubscribing", extra={"topic": self.topic.name})
                self.book = None
            except Exception:  # never leave the listeners of a dead task waiting in silence
                log.exception("stream upstream failed: resubscribing",
                              extra={"topic": self.topic.name})  # fmt: skip
                self.book = None
            finally:
                self.connected.clear()
                call.cancel()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        self._task = None
        self._on_idle(self)

    def _receive(self, item: spb.MarketData) -> None:
        kind = item.WhichOneof("body")
        if kind == "depth":
            out = self._depth(item.depth)
            if out is None:
                return
            item = spb.MarketData(depth=out)
        elif kind == "trade":
            trade = item.trade
            if trade.trade_id <= self._last_trade_id:
                return
            self._last_trade_id = trade.trade_id
            if trade.recent and self._calls == 1:
                return  # a first subscription's recent trades are history, not news
        self._send(item)

    def _depth(self, d: spb.DepthUpdate) -> spb.DepthUpdate | None:
        if d.snapshot:
            fresh = Book.from_levels(d.market, list(d.bids), list(d.asks), d.last_update_id)
            old, self.book = self.book, fresh
            if old is None or fresh.last_update_id <= old.last_update_id:
                return None
            return old.restart_to(fresh)  # updates were lost: clients take REST depth again
        if self.book is None:
            return None
        before = self.book.last_update_id
        if not self.book.apply(d):  # raises Gap: resubscribe for a snapshot
            return None
        out = spb.DepthUpdate()
        out.CopyFrom(d)
        out.first_update_id = before + 1
        return out

    def _send(self, item: spb.MarketData) -> None:
        message = Message(self.topic.name, item_seq(item), data_json(item), item)
        self.history.append(message)
        if item.WhichOneof("body") in ("ticker", "book_ticker", "kline"):
            self.latest = message
        self._publish(self, message)


class Upstreams:
    """The gateway's upstreams by topic, and the cadences their messages go out at."""

    def __init__(
        self, stub: StreamServiceAsyncStub, interval_ms: int = DEFAULT_INTERVAL_MS
    ) -> None:
        self.stub = stub
        self.by_topic: dict[str, Upstream] = {}
        self.prepare: Prepare | None = None  # for every upstream opened after it is set
        self.interval_ms = interval_ms  # the default cadence
        self.cadences = {0: Cadence(FLUSH_S, pending, merge_state=False)}
        if interval_ms:
            self.cadences[interval_ms] = Cadence(interval_ms / 1000, pending, merge_state=True)

    def publish(self, upstream: Upstream, message: Message) -> None:
        for cadence in self.cadences.values():
            cadence.publish(message)

    def join(self, topic: Topic, listener: Listener) -> Upstream:
        """The topic's upstream, opened if new, with `listener` added at its cadence."""
        self.cadences[listener.interval_ms].add(topic.name, listener)
        upstream = self.by_topic.get(topic.name)
        if upstream is None:
            upstream = Upstream(topic, self.stub, self._idle, self.publish, self.prepare)
            self.by_topic[topic.name] = upstream
        upstream.add(listener)
        return upstream

    def leave(self, topic: Topic, listener: Listener) -> None:
        self.cadences[listener.interval_ms].remove(topic.name, listener)
        upstream = self.by_topic.get(topic.name)
        if upstream is not None:
            upstream.remove(listener)

    def _idle(self, upstream: Upstream) -> None:
        if not upstream.listeners and self.by_topic.get(upstream.topic.name) is upstream:
            del self.by_topic[upstream.topic.name]

    async def close(self) -> None:
        for cadence in self.cadences.values():
            cadence.close()
            cadence.listeners.clear()
        for upstream in list(self.by_topic.values()):
            upstream.listeners.clear()
            upstream.close()
        self.by_topic.clear()
