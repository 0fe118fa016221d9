"""Server-Sent Events: the WebSocket's frames as text/event-stream, resumable by
Last-Event-ID."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway_svc.batches import batched_frame
from gateway_svc.cadence import requested_interval
from gateway_svc.connection import Connection
from gateway_svc.context import backends
from gateway_svc.errors import ApiError
from gateway_svc.streams import CONNECTIONS, OPEN, UPSTREAMS
from gateway_svc.subscriptions import FrameError, parse_topic


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
                missed = (upstream.since(int(last)) or []) if upstream else []
                if not wanted.batched:
                    for message in missed:
                        conn.put(message.frame(wanted.name, sse=True))
                elif missed:  # the missed trades as one batch
                    conn.put(batched_frame(wanted.name, missed, sse=True))
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
