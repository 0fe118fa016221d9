"""The app's stream plumbing: the channel to stream_svc with the upstreams every client
shares, and the set of open WebSocket and SSE connections, told to go away on shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web
from prometheus_client import Gauge

from exchange.stream.v1.stream_pb2_grpc import StreamServiceStub
from gateway_svc.upstream import Upstreams
from servicekit.mtls import channel as mesh_channel

UPSTREAMS = web.AppKey("upstreams", Upstreams)
OPEN = web.AppKey("stream_connections", set)  # the open WebSocket and SSE connections
CONNECTIONS = Gauge("gateway_ws_connections", "Open WebSocket and SSE connections")


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
