"""Order entry over the engine's batched stream: many callers, one `Execute` stream.

Every command a request makes is queued; a sender task drains the queue into one
CommandBatch per round trip, and a receiver task resolves each caller's future by the
request id the engine echoes. Under load batches grow by themselves, which is what lets
one gateway process carry thousands of orders per second through a Python gRPC client.

If the stream breaks (the engine restarting), every command in flight fails with
EngineUnavailable: the caller cannot know whether it was applied, exactly as with a
timeout, and answers 503. The next command opens a new stream.

A command unanswered after `timeout` seconds fails the same way. One timer sweeps the
oldest commands every quarter of the timeout (so a command gives up after 1 to 1.25 times
it) instead of a timer per command, which cost every order a heap insertion and removal.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1.engine_pb2_grpc import EngineServiceStub
from servicekit.admin_token import admin_metadata
from servicekit.logs import request_id as trace_id

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub

log = logging.getLogger(__name__)

MAX_BATCH = 1024


class EngineUnavailable(RuntimeError):
    """The engine did not answer; the command may or may not have been applied."""


class EngineClient:
    def __init__(
        self, channel: grpc.aio.Channel, *, timeout: float = 10.0, admin_token: str = ""
    ) -> None:
        self.stub: EngineServiceAsyncStub = EngineServiceStub(channel)
        self._timeout = timeout
        # Deposits travel on the stream, and the engine takes them only with its admin token.
        self._metadata = admin_metadata(admin_token)
        self._ids = itertools.count(1)
        self._queue: asyncio.Queue[epb.Command] = asyncio.Queue()
        # In the order sent, so the oldest are first: (reply, deadline on the loop's clock).
        self._pending: dict[int, tuple[asyncio.Future[epb.Reply], float]] = {}
        self._stream: asyncio.Task[None] | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        # Streams that broke since one last worked: during an outage every request tries
        # one, and only the first of them is worth a warning.
        self._broken = 0

    async def execute(self, command: epb.Command) -> epb.Reply:
        """Send one command (its request_id is set here) and wait for its reply."""
        request_id, future = self._submit(command)
        try:
            return await future
        finally:
            self._pending.pop(request_id, None)

    async def execute_many(self, commands: list[epb.Command]) -> list[epb.Reply]:
        """Send commands together (in one batch unless the stream is busy) and wait for all
        their replies, in order; EngineUnavailable if any is lost."""
        submitted = [self._submit(command) for command in commands]
        try:
            return [await future for _, future in submitted]
        finally:
            for request_id, future in submitted:
                self._pending.pop(request_id, None)
                if future.done() and not future.cancelled():
                    future.exception()  # the first error was raised; the rest are the same

    async def place(self, request: epb.PlaceOrderRequest) -> epb.PlaceOrderReply:
        return (await self.execute(epb.Command(place_order=request))).place_order

    async def place_many(self, requests: list[epb.PlaceOrderRequest]) -> list[epb.PlaceOrderReply]:
        replies = await self.execute_many([epb.Command(place_order=r) for r in requests])
        return [reply.place_order for reply in replies]

    async def cancel(self, request: epb.CancelOrderRequest) -> epb.CancelOrderReply:
        return (await self.execute(epb.Command(cancel_order=request))).cancel_order

    async def cancel_all(self, request: epb.CancelAllOrdersRequest) -> epb.CancelAllOrdersReply:
        return (await self.execute(epb.Command(cancel_all_orders=request))).cancel_all_orders

    async def deposit(self, request: epb.DepositRequest) -> epb.BalanceReply:
        return (await self.execute(epb.Command(deposit=request))).balance

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._stream is not None:
            self._stream.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stream

    def _submit(self, command: epb.Command) -> tuple[int, asyncio.Future[epb.Reply]]:
        """Queue the command for the stream (opened if need be); its id and reply."""
        loop = asyncio.get_running_loop()
        request_id = next(self._ids)
        command.request_id = request_id
        command.trace_id = trace_id.get()  # the HTTP request's id, for the engine's logs
        future: asyncio.Future[epb.Reply] = loop.create_future()
        self._pending[request_id] = (future, loop.time() + self._timeout)
        self._queue.put_nowait(command)
        if self._stream is None or self._stream.done():
            self._stream = asyncio.create_task(self._run_stream(), name="engine-execute")
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._timeout / 4, self._expire)
        return request_id, future

    def _expire(self) -> None:
        """Fail the commands past their deadline; come back while any are pending."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for future, deadline in self._pending.values():
            if deadline > now:
                break
            if not future.done():
                future.set_exception(EngineUnavailable("the engine did not answer in time"))
        self._sweeper = loop.call_later(self._timeout / 4, self._expire) if self._pending else None

    async def _batches(self) -> AsyncIterator[epb.CommandBatch]:
        queue = self._queue
        while True:
            commands = [await queue.get()]
            while len(commands) < MAX_BATCH and not queue.empty():
                commands.append(queue.get_nowait())
            yield epb.CommandBatch(commands=commands)

    async def _run_stream(self) -> None:
        try:
            async for batch in self.stub.Execute(self._batches(), metadata=self._metadata):
                if self._broken:
                    log.info("engine stream back after %d failed attempts", self._broken)
                    self._broken = 0
                pending = self._pending
                for reply in batch.replies:
                    waiting = pending.get(reply.request_id)
                    if waiting is not None and not waiting[0].done():
                        waiting[0].set_result(reply)
        except grpc.aio.AioRpcError as exc:
            level = logging.DEBUG if self._broken else logging.WARNING
            log.log(level, "engine stream ended: %s %s", exc.code().name, exc.details())
            self._broken += 1
        finally:
            # Whatever was sent or queued is now of unknown fate: fail it, and drop the queue.
            while not self._queue.empty():
                self._queue.get_nowait()
            error = EngineUnavailable("the engine stream broke")
            for future, _ in self._pending.values():
                if not future.done():
                    future.set_exception(error)
