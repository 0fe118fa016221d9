"""Live market data for clients: the WebSocket at /ws (and /); the same frames as Server-Sent
Events are sse.py's.

WebSocket frames in: `{"method": "SUBSCRIBE"|"UNSUBSCRIBE", "params": [topic, ...],
"id": any?, "token": bearer?, "signature": [key, signature, timestamp, window]?}`.
Topics as subscriptions.py names them; `account.*` ones need the token or the signature
(private_streams.py). A frame is acknowledged with `{"id": ..., "result": null}` or
answered with `{"id": ..., "error": {"code", "name", "message"}}`; a bad frame never
closes the connection. Frames out: `{"stream": <topic as subscribed>, "data": {...}}`,
every GATEWAY_WS_INTERVAL_MS (merged as cadence.py says), or in real time for a client that
connects with `?interval=0`.

A client that lets its send queue fill (connection.py) is closed with 1008
(SLOW_CONSUMER). The kernel's send buffer is capped (GATEWAY_WS_SEND_BUFFER_BYTES): left to
itself, Linux grows it to 4 MB for a client that stops reading, seconds of a busy market's
frames that the queue's limit would never see. Pings go out every
GATEWAY_WS_HEARTBEAT_SECONDS and a client that does not answer is closed; so is one that
holds no subscription for GATEWAY_WS_IDLE_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from gateway_svc import sse
from gateway_svc.cadence import requested_interval
from gateway_svc.connection import Connection, drain
from gateway_svc.context import Backends, backends
from gateway_svc.cors import check_websocket_origin
from gateway_svc.errors import ApiError
from gateway_svc.frames import error_frame
from gateway_svc.limits import LimitsUnavailable
from gateway_svc.private_streams import authenticate, keep_slot, take_slot
from gateway_svc.streams import CONNECTIONS, OPEN, UPSTREAMS
from gateway_svc.subscriptions import FrameError, parse_topic

log = logging.getLogger(__name__)

READY_SECONDS = 5.0  # how long an acknowledgement waits for a new stream's first state


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
                user = await authenticate(b, message, conn.address)
            except ApiError as exc:
                name = "FORBIDDEN" if exc.status == 403 else "UNAUTHORIZED"
                raise FrameError(4003, name, exc.message) from None
            if user is not None and user != conn.user_id:
                await take_slot(b, conn, user)
        markets = {m.symbol for m in await b.markets.all()}
        parsed = [parse_topic(p, conn.user_id, markets) for p in new]
        joined = [u for u in (conn.subscribe(w) for w in parsed) if u is not None]
        await asyncio.gather(*(u.wait_ready(READY_SECONDS) for u in joined))
        return orjson.dumps({"id": request_id, "result": None})
    except FrameError as exc:
        return error_frame(exc.code, exc.name, exc.message, request_id)


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
    writer = asyncio.create_task(drain(transport, conn))
    reader = asyncio.create_task(_reader(b, ws, conn, handle_frame, opened))
    keeper = asyncio.create_task(keep_slot(b, conn))
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


routes = web.RouteTableDef()
routes.get("/ws")(websocket)
routes.get("/api/v1/stream")(sse.sse)
