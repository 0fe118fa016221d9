"""The admin credential check: a server interceptor in front of EngineService.

With ENGINE_ADMIN_TOKEN set, the calls that create or destroy money or change what is listed
(Deposit, Withdraw, AddAsset, AddMarket, SetMarketStatus, SetTriggerLimit, Snapshot; and of
capital AddNetwork, ReportDeposit, DecideWithdrawal) need gRPC metadata
`authorization: Bearer <token>`, else PERMISSION_DENIED. Deposits and withdrawals can also
travel in an `Execute` batch: on a stream without the token, the first batch carrying one
ends the stream with PERMISSION_DENIED and none of that batch's commands is applied (the
batches before it were, and were answered). Queries and order entry stay open: the engine
trusts its network for those, and the gateway authenticates users.

The token is compared in constant time (hmac.compare_digest).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from exchange.engine.v1 import engine_pb2 as epb
from servicekit.admin_token import METADATA_KEY
from servicekit.handlers import Ctx, Handler

_SERVICE = epb.DESCRIPTOR.services_by_name["EngineService"].full_name
ADMIN_METHODS = frozenset(
    f"/{_SERVICE}/{name}"
    for name in (
        "Deposit",
        "Withdraw",
        "AddAsset",
        "AddMarket",
        "SetMarketStatus",
        "SetTriggerLimit",
        "Snapshot",
        # capital: custody reports deposits, operators and custody decide withdrawals
        "AddNetwork",
        "ReportDeposit",
        "DecideWithdrawal",
    )
)
_EXECUTE = f"/{_SERVICE}/Execute"
_MONEY_COMMANDS = frozenset({"deposit", "withdraw"})


class AdminAuth(grpc.aio.ServerInterceptor):
    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("an empty admin token would let everyone in")
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or (method not in ADMIN_METHODS and method != _EXECUTE):
            return handler
        if self._authorized(handler_call_details.invocation_metadata):
            return handler
        if method == _EXECUTE:
            return _money_free_execute(handler)
        return grpc.unary_unary_rpc_method_handler(
            _deny,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _authorized(self, metadata: Any) -> bool:
        for key, value in metadata or ():
            if key == METADATA_KEY:
                given = value.encode() if isinstance(value, str) else bytes(value)
                if hmac.compare_digest(given, self._expected):
                    return True
        return False


_DENIED = "this call needs the engine's admin token (authorization: Bearer ...)"


async def _deny(request: Any, context: Ctx) -> Any:
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, _DENIED)


def _money_free_execute(handler: Handler) -> Handler:
    """`Execute` for a caller without the token: it ends at the first batch moving money."""
    execute: Any = handler.stream_stream  # the servicer's async generator method

    async def guarded(
        requests: AsyncIterator[epb.CommandBatch], context: Ctx
    ) -> AsyncIterator[epb.ReplyBatch]:
        refused = False

        async def until_refused() -> AsyncIterator[epb.CommandBatch]:
            nonlocal refused
            async for batch in requests:
                if any(c.WhichOneof("body") in _MONEY_COMMANDS for c in batch.commands):
                    refused = True
                    return
                yield batch

        async for replies in execute(until_refused(), context):
            yield replies
        if refused:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, f"deposit and withdraw: {_DENIED}"
            )

    return grpc.stream_stream_rpc_method_handler(
        guarded,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
