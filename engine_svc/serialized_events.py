"""Subscribe's messages are sent as the hub serialized them.

The hub serializes each batch of events once for every subscriber and merges batches by
joining their bytes (see hub.py), so the generated handler's serializer, which would encode
an EventBatch per subscriber and message, is taken out of Subscribe's path. Innermost of the
server's interceptors: the others keep whatever serializer they are handed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc

from exchange.engine.v1 import engine_pb2 as epb
from servicekit.handlers import Handler

SUBSCRIBE = f"/{epb.DESCRIPTOR.services_by_name['EngineService'].full_name}/Subscribe"


class SerializedEvents(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if method != SUBSCRIBE or handler is None or handler.unary_stream is None:
            return handler
        return grpc.unary_stream_rpc_method_handler(
            handler.unary_stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=None,  # the bytes go out as they are
        )
