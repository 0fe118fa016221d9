"""Live market data for clients: WebSocket at /ws (and /) and Server-Sent Events.

WebSocket frames in: `{"method": "SUBSCRIBE"|"UNSUBSCRIBE", "params": [topic, ...],
"id": any?, "token": bearer?, "signature": [key, signature, timestamp, window]?}`.
Topics in either dialect: `depth@TATA_INR` or `depth.TATA_INR` (also trade, ticker,
bookTicker), `kline.<1m..1w>.TATA_INR`, and the caller's own `account.orderUpdate[.M]`,
`account.balanceUpdate`. A frame is acknowledged with `{"id": ..., "result": null}` or
answered with `{"id": ..., "error": {"code", "name", "message"}}`; a bad frame never
closes the connection. Frames out: `{"stream": <topic as subscribed>, "data": {...}}`,
every GATEWAY_WS_INTERVAL_MS (merged as cadence.py says), or in real time for a client that
connects with `?interval=0`.

Frames go straight to a connection's socket while its kernel and transport buffers take
them; beyond that they wait in a bounded queue, and a client that lets it fill is closed
with 1008 (SLOW_CONSUMER) instead of letting the gateway's memory grow. The kernel's send
buffer is capped (GATEWAY_WS_SEND_BUFFER_BYTES): left to itself, Linux grows it to 4 MB
for a client that stops reading, seconds of a busy market's frames that the queue's limit
would never see. Pings go out every GATEWAY_WS_HEARTBEAT_SECONDS and a client that does
not answer is closed; so is one that holds no subscription for GATEWAY_WS_IDLE_SECONDS.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web
from prometheus_client import Counter, Gauge

from exchange.stream.v1.stream_pb2_grpc import StreamServiceStub
from gateway_svc.auth import verify_signed
from gateway_svc.cadence import requested_interval
from gateway_svc.context import Backends, backends
from gateway_svc.cors import check_websocket_origin
from gateway_svc.errors import ApiError
from gateway_svc.fences import Scope, admit
from gateway_svc.frames import error_frame, sse_event, ws_text
from gateway_svc.limits import LimitsUnavailable
from gateway_svc.upstream import Pending, Upstream, Upstreams
from servicekit.mtls import channel as mesh_channel
from tradekit.topics import KLINE_INTERVALS, MARKET_KINDS, Topic

log = logging.getLogger(__name__)

UPSTREAMS = web.AppKey("upstreams", Upstreams)
OPEN = web.AppKey("stream_connections", set)  # the open WebSocket and SSE connections
READY_SECONDS = 5.0  # how long an acknowledgement waits for a new stream's first state
HIGH_WATER = 64 * 1024  # bytes in a transport's buffer beyond which frames wait in the queue
DRAIN_POLL_S = 0.01  # how soon a queue waiting for its socket to drain first looks again
DRAIN_POLL_MAX_S = 0.1  # and at most this long between looks: thousands of lagging
# clients each waking every 10 ms would take the gateway's CPU from the clients that read

CONNECTIONS = Gauge("gateway_ws_connections", "Open WebSocket and SSE connections")
SUBSCRIPTIONS = Gauge("gateway_ws_subscriptions", "Topic subscriptions of open connections")
DROPPED = Counter("gateway_ws_slow_closed_total", "Connections closed for falling behind")


class FrameError(Exception):
    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code, self.name, self.message = code, name, message


def _bad_topic(text: str) -> FrameError:
    return FrameError(4006, "INVALID_STREAM", f"unknown stream {text[:80]!r}")


@dataclass(frozen=True)
class Wanted:
    """A subscription as the client named it, and what it reads upstream."""

    name: str  # echoed as `stream`
    topic: Topic
    market_filter: str = ""  # account.orderUpdate.<M>: only that market's orders


def parse_topic(text: str, user_id: int | None, markets: set[str]) -> Wanted:
    """A client's topic name, in either dialect. Raises FrameError."""
    if not isinstance(text, str) or not 0 < len(text) <= 100 or not text.isascii():
        raise _bad_topic(str(text))
    if text.startswith("account."):
        if user_id is None:
            raise FrameError(4003, "UNAUTHORIZED", f"{text} needs a token or a signature")
        parts = text.split(".")
        if parts[1] == "orderUpdate" and len(parts) <= 3:
            market = parts[2] if len(parts) == 3 else ""
            if market and market not in markets:
                raise FrameError(4004, "INVALID_MARKET", f"unknown market {market[:40]!r}")
            return Wanted(text, Topic("orders", user_id=user_id), market)
        if text == "account.balanceUpdate":
            return Wanted(text, Topic("balances", user_id=user_id))
        raise _bad_topic(text)
    kind, sep, rest = text.partition("@") if "@" in text else text.partition(".")
    if not sep or not rest:
        raise _bad_topic(text)
    if kind == "kline":
        interval, _, market = rest.partition(".")
        if interval not in KLINE_INTERVALS:
            raise _bad_topic(text)
        topic = Topic("kline", market=market, interval_s=KLINE_INTERVALS[interval])
    elif kind in MARKET_KINDS:
        market = rest
        topic = Topic(kind, market=market)
    else:
        raise _bad_topic(text)
    if market not in markets:
        raise FrameError(4004, "INVALID_MARKET", f"unknown market {market[:40]!r}")
    return Wanted(text, topic)


class Connection:
    """One client (WebSocket or SSE): its subscriptions and its bounded send queue.

    A WebSocket connection passes its transport: frames are written to it directly (whole
    frames, so aiohttp's own pings and close frames never split one) until its buffer is
    above HIGH_WATER; then they queue, in order, for the writer task. An SSE connection
    always goes through its writer task."""

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
        """Its frames of the batch, in the batch's order, as one piece."""
        mine = [pending[topic] for topic in self.by_topic if topic in pending]
        messages = mine[0] if len(mine) == 1 else sorted(chain.from_iterable(mine))
        frames = [
            message.frame(wanted.name, self.sse)
            for _, message in messages
            for wanted in self.by_topic[message.topic]
            if not wanted.market_filter
            or message.item.order_update.order.market == wanted.market_filter
        ]
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


async def _authenticate(b: Backends, message: dict[str, Any], address: str) -> int | None:
    token = message.get("token")
    if isinstance(token, str) and token:
        return b.tokens.verify(token)
    signature = message.get("signature")
    if signature is None:
        return None
    if not (isinstance(signature, list) and len(signature) == 4
            and all(isinstance(x, str) for x in signature)):  # fmt: skip
        raise FrameError(4003, "UNAUTHORIZED", "signature must be [key, signature, ts, window]")
    names = ("X-API-Key", "X-Signature", "X-Timestamp", "X-Window")
    headers = dict(zip(names, signature, strict=True))
    # No replay guard: a subscription only reads, and clients such as ccxt sign several
    # subscriptions within one millisecond, which makes identical signatures.
    caller = await verify_signed(headers, "subscribe", {}, b.api_keys, None)
    assert caller.key is not None
    admit(Scope.READ, caller.key.permissions, caller.key.ip_allowlist, address)
    return caller.user_id


async def _take_slot(b: Backends, conn: Connection, user: int) -> None:
    """Counts the connection against its user's limit (GATEWAY_WS_CONNECTIONS, all replicas)."""
    if conn.slot is not None:
        raise FrameError(4003, "UNAUTHORIZED", "this connection already belongs to a user")
    try:
        slot = await b.connections.acquire(str(user), b.settings.ws_connections)
    except LimitsUnavailable:
        raise FrameError(4007, "UNAVAILABLE", "try again shortly") from None
    if slot is None:
        limit = b.settings.ws_connections
        raise FrameError(4005, "TOO_MANY_CONNECTIONS", f"at most {limit} connections per user")
    conn.user_id, conn.slot = user, slot


async def _keep_slot(b: Backends, conn: Connection) -> None:
    """Refreshes the connection's slot while it lives; closes it if the slot was lost."""
    while True:
        await asyncio.sleep(b.connections.refresh_interval)
        if conn.slot is None or conn.user_id is None:
            continue
        try:
            held = await b.connections.refresh(str(conn.user_id), conn.slot)
        except LimitsUnavailable:
            continue  # Redis is down: keep the connection rather than drop everyone
        if not held:
            conn.closed.set()
            return


async def _handle_frame(b: Backends, conn: Connection, raw: str) -> bytes:
    """Applies one client frame; returns the acknowledgement or the error frame."""
    request_id: Any = None
    try:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise FrameError(4000, "INVALID_FRAME", "the frame is not JSON") from None
        if not isinstance(message, dict):
            raise FrameError(4000, "INVALID_FRAME", "the frame must be a JSON object")
        request_id = message.get("id")
        if not isinstance(request_id, int | str | None):
            request_id = None
        method = message.get("method")
        params = message.get("params")
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            raise FrameError(4001, "UNKNOWN_METHOD", "method must be SUBSCRIBE or UNSUBSCRIBE")
        if not isinstance(params, list) or not params:
            raise FrameError(4000, "INVALID_FRAME", "params must be a non-empty list of streams")
        if method == "UNSUBSCRIBE":
            for name in params:
                if isinstance(name, str):
                    conn.unsubscribe(name)
            return orjson.dumps({"id": request_id, "result": None})
        if not all(isinstance(p, str) for p in params):  # a list or object is unhashable
            raise FrameError(4006, "INVALID_STREAM", "every stream must be a string")
        limit = b.settings.ws_max_topics
        new = [p for p in params if p not in conn.wanted]
        if len(conn.wanted) + len(new) > limit:
            raise FrameError(4002, "TOO_MANY_STREAMS", f"at most {limit} streams per connection")
        if any(isinstance(p, str) and p.startswith("account.") for p in new):
            try:
                user = await _authenticate(b, message, conn.address)
            except ApiError as exc:
                name = "FORBIDDEN" if exc.status == 403 else "UNAUTHORIZED"
                raise FrameError(4003, name, exc.message) from None
            if user is not None and user != conn.user_id:
                await _take_slot(b, conn, user)
        markets = {m.symbol for m in await b.markets.all()}
        parsed = [parse_topic(p, conn.user_id, markets) for p in new]
        joined = [u for u in (conn.subscribe(w) for w in parsed) if u is not None]
        await asyncio.gather(*(u.wait_ready(READY_SECONDS) for u in joined))
        return orjson.dumps({"id": request_id, "result": None})
    except FrameError as exc:
        return error_frame(exc.code, exc.name, exc.message, request_id)


async def _writer(transport: asyncio.Transport, conn: Connection) -> None:
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


# Applies one client frame to its connection and returns the answer to send.
FrameHandler = Callable[[Backends, Connection, str], Awaitable[bytes]]


async def websocket(request: web.Request) -> web.WebSocketResponse:
    return await serve_socket(request, Connection, _handle_frame)


async def serve_socket(
    request: web.Request,
    make: Callable[..., Connection],
    handle_frame: FrameHandler,
    opened: Callable[[Connection], Awaitable[None]] | None = None,
) -> web.WebSocketResponse:
    """Upgrades the request and serves a connection `make` builds (with Connection's
    arguments) until either side closes it; `opened` runs once the socket is up (a dialect's
    streams named in the URL), `handle_frame` answers each text frame."""
    b = backends(request)
    settings = b.settings
    check_websocket_origin(request, settings.cors_origins)
    upstreams = request.app[UPSTREAMS]
    interval_ms = requested_interval(request.query.get("interval"), upstreams.interval_ms)
    # No permessage-deflate: every client is sent the same frame bytes, built once.
    ws = web.WebSocketResponse(
        heartbeat=settings.ws_heartbeat_seconds,
        max_msg_size=settings.ws_max_frame_bytes,
        compress=False,
    )
    await ws.prepare(request)
    transport = request.transport
    if transport is None:  # the client left during the handshake
        return ws
    if settings.ws_send_buffer_bytes:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, settings.ws_send_buffer_bytes)
    conn = make(upstreams, settings.ws_queue_frames, transport=transport, interval_ms=interval_ms)
    conn.address = request.remote or ""
    request.app[OPEN].add(conn)
    CONNECTIONS.inc()
    writer = asyncio.create_task(_writer(transport, conn))
    reader = asyncio.create_task(_reader(b, ws, conn, handle_frame, opened))
    keeper = asyncio.create_task(_keep_slot(b, conn))
    idle = asyncio.create_task(_idle(conn, settings.ws_idle_seconds))
    closed = asyncio.ensure_future(conn.closed.wait())
    try:
        await asyncio.wait([writer, reader, idle, closed], return_when=asyncio.FIRST_COMPLETED)
    finally:
        CONNECTIONS.dec()
        request.app[OPEN].discard(conn)
        conn.close()
        for task in (writer, reader, keeper, idle, closed):
            task.cancel()
        if conn.slot is not None and conn.user_id is not None:
            with contextlib.suppress(LimitsUnavailable):
                await b.connections.release(str(conn.user_id), conn.slot)
        if conn.slow:
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"SLOW_CONSUMER")
        elif conn.going_away:
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"SHUTDOWN")
        elif idle.done() and not idle.cancelled():
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"IDLE")
        else:
            await ws.close()
    return ws


async def _idle(conn: Connection, seconds: float) -> None:
    """Returns once the connection has held no subscription for `seconds`."""
    while True:
        since = conn.idle_since
        left = seconds if since is None else since + seconds - time.monotonic()
        if since is not None and left <= 0:
            return
        await asyncio.sleep(left)


async def _reader(
    b: Backends,
    ws: web.WebSocketResponse,
    conn: Connection,
    handle_frame: FrameHandler,
    opened: Callable[[Connection], Awaitable[None]] | None,
) -> None:
    if opened is not None:
        await opened(conn)
    while True:
        msg = await ws.receive()
        if msg.type == WSMsgType.TEXT:
            conn.put(conn.wire(await handle_frame(b, conn, msg.data)))
        elif msg.type == WSMsgType.BINARY:
            conn.put(conn.wire(error_frame(4000, "INVALID_FRAME", "send JSON text frames")))
        elif msg.type == WSMsgType.ERROR:
            exc = ws.exception()
            if exc is not None and "too big" in str(exc).lower():
                log.info("ws frame too large")
            return
        else:  # CLOSE, CLOSING, CLOSED
            return


@web.middleware
async def websocket_at_root(request: web.Request, handler: Any) -> web.StreamResponse:
    """Backpack clients connect to `/`: a WebSocket upgrade there is the stream, anything
    else at `/` is the web UI."""
    if request.path == "/" and request.headers.get("Upgrade", "").lower() == "websocket":
        try:
            return await websocket(request)
        except ApiError as exc:  # outside the error middleware
            return exc.response()
    response: web.StreamResponse = await handler(request)
    return response


async def sse(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/stream?topics=a,b: the same frames as text/event-stream. Each event's id
    is its engine sequence number; with Last-Event-ID the frames after it are replayed when
    still kept, else the topic starts from its current state."""
    b = backends(request)
    names = [t for t in request.query.get("topics", "").split(",") if t]
    markets = {m.symbol for m in await b.markets.all()}
    try:
        if not names or len(names) > b.settings.ws_max_topics:
            raise FrameError(4002, "TOO_MANY_STREAMS",
                             f"give 1 to {b.settings.ws_max_topics} topics")  # fmt: skip
        user = None
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            user = b.tokens.verify(authorization[7:].strip())
        parsed = [parse_topic(n, user, markets) for n in names]
    except FrameError as exc:
        raise ApiError(400, exc.name, exc.message) from None
    last = request.headers.get("Last-Event-ID", "")
    upstreams = request.app[UPSTREAMS]
    interval_ms = requested_interval(request.query.get("interval"), upstreams.interval_ms)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    conn = Connection(upstreams, b.settings.ws_queue_frames, sse=True, interval_ms=interval_ms)
    request.app[OPEN].add(conn)
    CONNECTIONS.inc()
    try:
        if last.isdigit():
            for wanted in parsed:
                upstream = upstreams.by_topic.get(wanted.topic.name)
                for message in (upstream.since(int(last)) or []) if upstream else []:
                    conn.put(message.frame(wanted.name, sse=True))
        for wanted in parsed:
            conn.subscribe(wanted)
        while await conn.backlog():
            await response.write(conn.take())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        CONNECTIONS.dec()
        request.app[OPEN].discard(conn)
        conn.close()
    return response


async def close_streams(app: web.Application) -> None:
    """On shutdown: every stream client is told to go away (1001), to reconnect elsewhere."""
    for conn in list(app.get(OPEN, ())):
        conn.going_away = True
        conn.close()


def streams_context(
    address: str, interval_ms: int
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context: the channel to stream_svc and the shared upstreams."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        channel = mesh_channel(address)
        upstreams = Upstreams(StreamServiceStub(channel), interval_ms)
        app[UPSTREAMS] = upstreams
        app[OPEN] = set()
        yield
        await upstreams.close()
        await channel.close()

    return ctx


routes = web.RouteTableDef()
routes.get("/ws")(websocket)
routes.get("/api/v1/stream")(sse)
