"""Server interceptors that wrap a method's behaviour: one place that knows how a gRPC
method handler is taken apart and rebuilt around new behaviour, whatever its kind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # generic in the stubs only
Ctx = grpc.aio.ServicerContext[Any, Any]
Unary = Callable[[Any, Ctx], Awaitable[Any]]
Streaming = Callable[[Any, Ctx], AsyncIterator[Any]]


def wrapped(
    handler: Handler,
    unary: Callable[[Any], Unary],
    streaming: Callable[[Any], Streaming],
) -> Handler:
    """`handler` with its behaviour wrapped by `unary` (a unary method) or `streaming` (a
    server- or bidirectional-streaming one), with the same (de)serializers."""
    options = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **options)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **options)
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **options)
    return handler  # client streaming: none of the exchange's services has one
