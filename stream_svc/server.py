"""Runs stream_svc: the hub reading Redis, and StreamService over gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1._async import HealthServicer
from redis.asyncio import Redis

from exchange.engine.v1.engine_pb2_grpc import EngineServiceStub
from exchange.stream.v1 import stream_pb2 as spb
from exchange.stream.v1 import stream_pb2_grpc
from servicekit.grpc_server import add_health_and_reflection, serve_until_signalled, set_serving
from servicekit.metrics import metrics_endpoint
from stream_svc.hub import SlowSubscriber, StreamHub, UnknownMarket
from stream_svc.metrics import hub_registry
from stream_svc.settings import StreamSettings
from tradekit.topics import BadTopic, Topic

log = logging.getLogger(__name__)

SERVICE_NAME = spb.DESCRIPTOR.services_by_name["StreamService"].full_name


class StreamServicer(stream_pb2_grpc.StreamServiceServicer):
    def __init__(self, hub: StreamHub) -> None:
        self.hub = hub

    async def Subscribe(
        self,
        request: spb.SubscribeRequest,
        context: grpc.aio.ServicerContext[spb.SubscribeRequest, spb.MarketData],
    ) -> AsyncIterator[spb.MarketData]:
        try:
            topic = Topic.parse(request.topic)
        except BadTopic as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"INVALID_TOPIC: {exc}")
        try:
            async with self.hub.subscription(topic) as (snapshot, subscriber):
                # Headers now: the caller knows it is subscribed even before any data.
                await context.send_initial_metadata(())
                for item in snapshot:
                    yield item
                while True:
                    yield await subscriber.next()
        except UnknownMarket as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"INVALID_MARKET: {exc}")
        except SlowSubscriber:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "SLOW_CONSUMER: fell behind")


@contextlib.asynccontextmanager
async def running_hub(settings: StreamSettings) -> AsyncIterator[StreamHub]:
    """A hub following Redis, with its engine channel; stopped on exit."""
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=5)
    channel = grpc.aio.insecure_channel(
        settings.engine_address, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    )
    hub = StreamHub(EngineServiceStub(channel), redis, settings.queue_items)
    task = asyncio.create_task(hub.run(), name="stream hub")
    try:
        yield hub
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await hub.close()
        await channel.close()
        await redis.aclose()


def create_server(hub: StreamHub, address: str) -> tuple[grpc.aio.Server, HealthServicer, int]:
    server = grpc.aio.server()
    stream_pb2_grpc.add_StreamServiceServicer_to_server(StreamServicer(hub), server)
    health = add_health_and_reflection(server, [SERVICE_NAME])
    port = server.add_insecure_port(address)
    return server, health, port


async def serve(settings: StreamSettings) -> None:
    async with (
        running_hub(settings) as hub,
        metrics_endpoint(
            "stream", hub_registry(hub), settings.host, settings.metrics_port, "STREAM_METRICS_PORT"
        ),
    ):
        server, health, port = create_server(hub, f"{settings.host}:{settings.port}")
        await server.start()
        await hub.connected.wait()
        await set_serving(health, [SERVICE_NAME])
        log.info("stream serving", extra={"port": port, "metrics_port": settings.metrics_port})
        await serve_until_signalled(server, health, grace=settings.grace_seconds)
