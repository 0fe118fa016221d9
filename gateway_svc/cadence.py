"""Interval frames: how often a connection is sent its topics' messages, and what a batch
merges into.

A `Cadence` gathers the messages of its listeners' topics and hands them out at most once per
period, each listener all of its frames of the batch in one write. The default cadence
(GATEWAY_WS_INTERVAL_MS, 100 ms) merges a batch as Binance's `@depth@100ms` and Backpack's
streams do: a topic's consecutive depth diffs become one diff that continues the `U`/`u`
chain, ticker and bookTicker keep only their latest message, a candle its latest state
(a candle that closed within the batch still gets its last one), and trades, orders and
balances are all delivered, one per frame (ccxt.pro reads one object per frame), or a
batch's trades in one frame for a `trade@<M>@batch` subscriber (batches.py). A
connection that asks for `?interval=0` gets the real-time cadence: messages go out within
FLUSH_S, only consecutive depth diffs of one batch merged, as before interval frames.

Merging happens once per batch and frames are rendered once per batch for each distinct set
of subscriptions, so every subscriber of a topic is written the same bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from prometheus_client import Counter

from gateway_svc.errors import ApiError

if TYPE_CHECKING:
    from gateway_svc.upstream import Listener, Message, Pending

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_MS = 100  # GATEWAY_WS_INTERVAL_MS when unset
FLUSH_S = 0.005  # the real-time cadence: a busy stream's messages are gathered this long
# Callbacks, each queued by the one before, after which a flush's writes are done: uvloop
# writes transports' data at the end of the pass over ready callbacks that the flush ran in
# or that follows it, and a callback queued during a pass runs in the next one.
WRITE_TURNS = 2
LATEST_ONLY = ("ticker", "book_ticker")  # state whose older values nobody needs
FANNED_OUT = Counter("gateway_ws_messages_total", "Messages handed to client connections")


def latest_only(batch: list[Message]) -> list[Message]:
    """The batch without the messages a later one of the same state replaces: ticker and
    bookTicker by topic, a candle by topic and open time."""
    last: dict[Hashable, int] = {}
    for place, message in enumerate(batch):
        kind = message.item.WhichOneof("body")
        if kind in LATEST_ONLY:
            last[message.topic] = place
        elif kind == "kline":
            last[(message.topic, message.item.kline.open_time_us)] = place
    if len(last) == sum(m.item.WhichOneof("body") in (*LATEST_ONLY, "kline") for m in batch):
        return batch
    keep = set(last.values())
    return [
        m
        for place, m in enumerate(batch)
        if place in keep or m.item.WhichOneof("body") not in (*LATEST_ONLY, "kline")
    ]


def requested_interval(text: str | None, default_ms: int) -> int:
    """The cadence a client asked for with `?interval=`: 0 (real time) or the gateway's own
    interval (the default); anything else is refused before the upgrade."""
    if text is None:
        return default_ms
    allowed = sorted({0, default_ms})
    # Compared as text: str.isdigit and int() take other scripts' digits (Arabic-Indic
    # 100 is 100), and int() refuses a string of thousands of digits.
    if text not in {str(ms) for ms in allowed}:
        raise ApiError(400, "INVALID_INTERVAL", f"interval must be one of {allowed} (milliseconds)")
    return int(text)


class Cadence:
    """One pace of delivery and the listeners on it, by topic."""

    def __init__(
        self, period_s: float, pending: Callable[[list[Message]], Pending], *, merge_state: bool
    ) -> None:
        self.period_s = period_s
        self._pending = pending  # a batch as listeners read it, its depth diffs merged
        self.merge_state = merge_state  # latest-only ticker, bookTicker and candles
        self.listeners: dict[str, set[Listener]] = {}
        self._batch: list[Message] = []
        self._flush: asyncio.Handle | None = None
        self._due = 0.0  # the earliest time the next batch may go out

    def add(self, topic: str, listener: Listener) -> None:
        self.listeners.setdefault(topic, set()).add(listener)

    def remove(self, topic: str, listener: Listener) -> None:
        listeners = self.listeners.get(topic)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self.listeners[topic]

    def publish(self, message: Message) -> None:
        """Takes `message` if a listener here reads its topic; the first message after a quiet
        period goes out at the next turn of the loop, later ones when the next batch is due."""
        if message.topic not in self.listeners:
            return
        self._batch.append(message)
        if self._flush is None:
            loop = asyncio.get_running_loop()
            if self._due <= loop.time():
                self._flush = loop.call_soon(self.flush)
            else:
                self._flush = loop.call_at(self._due, self.flush)

    def flush(self) -> None:
        """Hands the batch to its listeners: one send per listener for all of its frames."""
        if self._flush is not None:  # called before its time (tests): it replaces the timer
            self._flush.cancel()
        loop = asyncio.get_running_loop()
        started = loop.time()
        batch, self._batch = self._batch, []
        by_topic = self._pending(latest_only(batch) if self.merge_state else batch)
        touched: set[Listener] = set()
        for topic in by_topic:
            touched.update(self.listeners.get(topic, ()))
        rendered: dict[Hashable, tuple[bytes, int]] = {}
        handed = 0
        for listener in touched:
            try:
                handed += listener.send(by_topic, rendered)
            except Exception:  # one listener's bug is its own: the others get the batch
                log.exception("a WebSocket listener failed to take a batch")
        FANNED_OUT.inc(handed)
        # uvloop writes a transport's data after the callbacks of the loop's turn, not in
        # `write`: with thousands of clients those writes are most of the flush. Its time
        # ends two turns on, when they are done; until then messages only join the batch.
        self._flush = loop.call_soon(self._written, started, WRITE_TURNS)

    def _written(self, started: float, turns: int) -> None:
        """Once the flush's writes are done, sets when the next batch may go out: a period
        after this one started, or twice as long as it took if that is later. The loop
        keeps at least half of its time for reading the upstreams, and a slow flush to many
        clients makes batches fuller, not more often."""
        loop = asyncio.get_running_loop()
        if turns > 1:
            self._flush = loop.call_soon(self._written, started, turns - 1)
            return
        took = loop.time() - started
        self._due = started + max(self.period_s, 2 * took)
        self._flush = loop.call_at(self._due, self.flush) if self._batch else None

    def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self._batch.clear()
