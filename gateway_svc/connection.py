"""One stream client (WebSocket or SSE): its subscriptions, the frames of each batch it is
sent, and its bounded send queue.

Frames go straight to a connection's socket while its kernel and transport buffers take
them; beyond that they wait in a bounded queue, and a client that lets it fill is closed
with 1008 (SLOW_CONSUMER) instead of letting the gateway's memory grow.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import deque
from collections.abc import Hashable
from itertools import chain

from prometheus_client import Counter, Gauge

from gateway_svc.batches import cached_batch
from gateway_svc.frames import error_frame, sse_event, ws_text
from gateway_svc.subscriptions import Wanted
from gateway_svc.upstream import Pending, Upstream, Upstreams

HIGH_WATER = 64 * 1024  # bytes in a transport's buffer beyond which frames wait in the queue
DRAIN_POLL_S = 0.01  # how soon a queue waiting for its socket to drain first looks again
DRAIN_POLL_MAX_S = 0.1  # and at most this long between looks: thousands of lagging
# clients each waking every 10 ms would take the gateway's CPU from the clients that read

SUBSCRIPTIONS = Gauge("gateway_ws_subscriptions", "Topic subscriptions of open connections")
DROPPED = Counter("gateway_ws_slow_closed_total", "Connections closed for falling behind")


class Connection:
    """One client (WebSocket or SSE): its subscriptions and its bounded send queue.

    A WebSocket connection passes its transport: frames are written to it directly (whole
    frames, so aiohttp's own pings and close frames never split one) until its buffer is
    above HIGH_WATER; then they queue, in order, for its writer task (`drain`). An SSE
    connection always goes through its writer task."""

    def __init__(
        self,
        upstreams: Upstreams,
        queue_frames: int,
        *,
        transport: asyncio.Transport | None = None,
        sse: bool = False,
        interval_ms: int | None = None,
    ) -> None:
        self.upstreams = upstreams
        # Its cadence (cadence.py): the gateway's interval unless the client chose real time.
        self.interval_ms = upstreams.interval_ms if interval_ms is None else interval_ms
        self.transport = transport
        self.sse = sse  # frames as text/event-stream events, with their seq as the id
        self.frames: deque[bytes] = deque()  # waiting for the socket, in order
        self.queued = 0  # messages in `frames` (one entry can hold a batch of them)
        self.max_frames = queue_frames
        self._ready = asyncio.Event()
        self.wanted: dict[str, Wanted] = {}  # by client name
        self.by_topic: dict[str, list[Wanted]] = {}  # each list in order of name
        self._profile: Hashable | None = None
        self.user_id: int | None = None
        self.address = ""  # the client's, for a signed subscription's key allowlist
        self.slot: str | None = None  # this connection's place among its user's (limits.py)
        self.slow = False
        self.going_away = False  # the gateway is shutting down
        self.idle_since: float | None = time.monotonic()  # None while it has subscriptions
        self.closed = asyncio.Event()

    def wire(self, payload: bytes) -> bytes:
        """A JSON payload as this connection sends it: a WebSocket frame or an SSE event."""
        return sse_event(payload) if self.sse else ws_text(payload)

    @property
    def profile(self) -> Hashable:
        """What decides this connection's frames of a batch: its kind, and each name it
        subscribed with the topic read for it (a private topic's names the user). Plain
        strings, which compare in C: the rendering cache looks a profile up per connection."""
        if self._profile is None:
            names = sorted((w.name, w.topic.name) for w in self.wanted.values())
            self._profile = (self.sse, tuple(names))
        return self._profile

    def send(self, pending: Pending, rendered: dict[Hashable, tuple[bytes, int]]) -> int:
        out = rendered.get(self.profile)
        if out is None:
            out = rendered[self.profile] = self._render(pending)
        if out[1]:
            self.put(*out)
        return out[1]

    def _render(self, pending: Pending) -> tuple[bytes, int]:
        """Its frames of the batch, in the batch's order, as one piece; a batched trade
        stream's one frame goes at the place of its last trade."""
        mine = [pending[topic] for topic in self.by_topic if topic in pending]
        messages = mine[0] if len(mine) == 1 else sorted(chain.from_iterable(mine))
        frames = []
        for _, message in messages:
            for wanted in self.by_topic[message.topic]:
                if wanted.batched:
                    of_topic = pending[message.topic]
                    if message is of_topic[-1][1]:
                        frames.append(cached_batch(wanted.name, of_topic, self.sse))
                elif (
                    not wanted.market_filter
                    or message.item.order_update.order.market == wanted.market_filter
                ):
                    frames.append(message.frame(wanted.name, self.sse))
        return (frames[0] if len(frames) == 1 else b"".join(frames)), len(frames)

    def failed(self, topic: str, code: str, message: str) -> None:
        for wanted in list(self.by_topic.get(topic, ())):
            self.put(self.wire(error_frame(4006, code, f"{wanted.name}: {message}")))
            self.unsubscribe(wanted.name)

    def put(self, data: bytes, count: int = 1) -> None:
        """Sends `data` (`count` frames on the wire) or queues it behind what waits."""
        if self.slow or self.closed.is_set():
            return
        transport = self.transport
        if transport is not None and not self.frames:
            if transport.is_closing():
                return
            if transport.get_write_buffer_size() <= HIGH_WATER:
                transport.write(data)
                return
        if self.queued + count > self.max_frames:
            self.slow = True
            DROPPED.inc()
            self.closed.set()
            self._ready.set()
            return
        self.frames.append(data)
        self.queued += count
        self._ready.set()

    async def backlog(self) -> bool:
        """Waits until frames are queued: True, or False once the connection is closed."""
        while not self.frames:
            if self.closed.is_set():
                return False
            self._ready.clear()
            await self._ready.wait()
        return not self.slow

    def take(self) -> bytes:
        """Everything queued, in order, as one write."""
        data = b"".join(self.frames)
        self.frames.clear()
        self.queued = 0
        return data

    def subscribe(self, wanted: Wanted) -> Upstream | None:
        """Adds the subscription; returns its upstream when this connection is new to it."""
        if wanted.name in self.wanted:
            return None
        self.wanted[wanted.name] = wanted
        self._profile = None
        self.idle_since = None
        others = self.by_topic.setdefault(wanted.topic.name, [])
        bisect.insort(others, wanted, key=lambda w: w.name)
        SUBSCRIPTIONS.inc()
        if len(others) == 1:
            return self.upstreams.join(wanted.topic, self)
        return None

    def unsubscribe(self, name: str) -> None:
        wanted = self.wanted.pop(name, None)
        if wanted is None:
            return
        self._profile = None
        SUBSCRIPTIONS.dec()
        if not self.wanted:
            self.idle_since = time.monotonic()
        others = self.by_topic[wanted.topic.name]
        others.remove(wanted)
        if not others:
            del self.by_topic[wanted.topic.name]
            self.upstreams.leave(wanted.topic, self)

    def close(self) -> None:
        for name in list(self.wanted):
            self.unsubscribe(name)
        self.closed.set()
        self._ready.set()


async def drain(transport: asyncio.Transport, conn: Connection) -> None:
    """Writes what queued while the socket was full, once it has drained; the queue is taken
    only when it can be written, so frames put meanwhile stay behind it."""
    while await conn.backlog():
        wait = DRAIN_POLL_S
        while transport.get_write_buffer_size() > HIGH_WATER:
            if transport.is_closing():
                return
            await asyncio.sleep(wait)
            wait = min(2 * wait, DRAIN_POLL_MAX_S)
        transport.write(conn.take())
