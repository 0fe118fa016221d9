"""The services exchangectl talks to: typed stubs, the admin credential, one error mapping."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import grpc

from exchange.engine.v1.engine_pb2_grpc import EngineServiceStub
from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceStub
from exchangectl.errors import from_rpc
from servicekit.admin_token import Metadata, admin_metadata
from servicekit.mtls import channel as mesh_channel

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub
    from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceAsyncStub

T = TypeVar("T")

_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024), ("grpc.enable_http_proxy", 0)]


@dataclass(frozen=True)
class Backends:
    engine: EngineServiceAsyncStub
    ledger: LedgerServiceAsyncStub
    engine_address: str
    ledger_address: str
    admin: Metadata  # sent with the engine's admin calls
    timeout: float  # seconds for each call

    async def from_engine(self, call: Awaitable[T]) -> T:
        """The call's reply; a gRPC failure becomes a CtlError naming the engine."""
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            raise from_rpc("engine", self.engine_address, exc) from None

    async def from_ledger(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            raise from_rpc("ledger", self.ledger_address, exc) from None


@contextlib.asynccontextmanager
async def connect(
    engine_address: str, ledger_address: str, token: str, call_timeout: float
) -> AsyncIterator[Backends]:
    """Channels connect on first use, so a command that needs one service works while the
    other is down."""
    async with (
        mesh_channel(engine_address, options=_OPTIONS) as engine,
        mesh_channel(ledger_address, options=_OPTIONS) as ledger,
    ):
        yield Backends(
            engine=EngineServiceStub(engine),
            ledger=LedgerServiceStub(ledger),
            engine_address=engine_address,
            ledger_address=ledger_address,
            admin=admin_metadata(token),
            timeout=call_timeout,
        )


def open_channel(address: str) -> grpc.aio.Channel:
    return mesh_channel(address, options=_OPTIONS)
