"""The request id across gRPC: the caller sends it as metadata `x-request-id`, the server
puts it in the `request_id` contextvar that every log line carries.

Client side, an interceptor on unary calls copies the contextvar (set by the gateway's
HTTP middleware) into the call's metadata. Streams are left alone: a long-lived stream
serves many requests, so what travels on it carries its own id (the engine's `Command`
has a `trace_id`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from servicekit.handlers import Ctx, Handler, wrapped
from servicekit.logs import request_id

METADATA_KEY = "x-request-id"

log = logging.getLogger(__name__)


class SendRequestId(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds the current request id, if any, to every unary call's metadata."""

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        rid = request_id.get()
        if rid:
            d = client_call_details
            metadata = grpc.aio.Metadata(*(d.metadata or ()))
            metadata[METADATA_KEY] = rid
            client_call_details = grpc.aio.ClientCallDetails(
                d.method, d.timeout, metadata, d.credentials, d.wait_for_ready
            )
        return await continuation(client_call_details, request)


class ReceiveRequestId(grpc.aio.ServerInterceptor):
    """Sets the `request_id` contextvar from the metadata for the length of each call,
    and logs the call at DEBUG so that the request is seen arriving."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        rid = _metadata_value(handler_call_details.invocation_metadata)
        if handler is None or not rid:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        return wrapped(
            handler,
            functools.partial(_unary, rid, method),
            functools.partial(_streaming, rid, method),
        )


def _metadata_value(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == METADATA_KEY:
            return value if isinstance(value, str) else bytes(value).decode(errors="replace")
    return ""


def _unary(rid: str, method: str, behavior: Any) -> Callable[[Any, Ctx], Awaitable[Any]]:
    async def with_id(request: Any, context: Ctx) -> Any:
        token = request_id.set(rid)
        try:
            log.debug("rpc %s", method, extra={"rpc": method})
            return await behavior(request, context)
        finally:
            request_id.reset(token)

    return with_id


def _streaming(rid: str, method: str, behavior: Any) -> Callable[[Any, Ctx], AsyncIterator[Any]]:
    async def with_id(request: Any, context: Ctx) -> AsyncIterator[Any]:
        # The generator runs in the call's own task: setting the variable here is enough,
        # and resetting it across `yield`s would fail (each step may run in a new context).
        request_id.set(rid)
        log.debug("rpc %s", method, extra={"rpc": method})
        async for reply in behavior(request, context):
            yield reply

    return with_id
