"""Ingest: the engine's event stream into PostgreSQL, exactly once and in order.

One session = read the stored cursor, Subscribe(from_seq = cursor + 1), then repeatedly take
every event that has arrived (up to a batch limit), project it and store it with the new
cursor in one transaction. Reading, projecting and storing overlap: while a batch is being
written, the next one accumulates and is projected, so batches grow exactly when the
database is the bottleneck (group commit).

Any failure (engine restarting, PostgreSQL restarting, a gap, another replica moving the
cursor) ends the session; the next one starts again from what is stored, after a backoff.
Nothing in memory is trusted across sessions, so nothing is lost or applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import grpc

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1.engine_pb2_grpc import EngineServiceStub
from ledger_svc.db import Conn
from ledger_svc.migrate import timescale_in_use
from ledger_svc.projection import Batch, Catalog, Projector
from ledger_svc.writer import load_catalog, read_cursor, store
from servicekit.event_feed import EventFeed

log = logging.getLogger(__name__)

# Told of every stored batch: its number of events and the seconds its transaction took.
BatchObserver = Callable[[int, float], None]


@dataclass
class IngestStatus:
    last_seq: int = 0
    last_event_ts_us: int = 0
    connected: bool = False
    batches: int = 0
    events: int = 0


class Ingest:
    """Runs sessions until cancelled; `status` and `wait_for` tell how far it got."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        engine: grpc.aio.Channel,
        *,
        max_batch_events: int = 20_000,
        linger_ms: int = 0,
        queue_batches: int = 256,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        on_stored: BatchObserver | None = None,
    ) -> None:
        self._pool = pool
        self._stub = EngineServiceStub(engine)
        self._max_batch = max_batch_events
        self._linger_ms = linger_ms  # see SubscribeRequest.linger_ms
        self._queue_batches = queue_batches
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._on_stored = on_stored
        self.status = IngestStatus()
        self._advanced = asyncio.Condition()

    async def run(self) -> None:
        backoff = self._backoff_initial
        while True:
            started = time.monotonic()
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure ends the session the same way
                self.status.connected = False
                if time.monotonic() - started > 10:
                    backoff = self._backoff_initial  # it ran fine for a while
                log.warning("ingest session ended (%s); resuming in %.1fs", _describe(exc), backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max)

    async def wait_for(self, seq: int) -> None:
        """Return once every event up to `seq` is stored."""
        async with self._advanced:
            await self._advanced.wait_for(lambda: self.status.last_seq >= seq)

    async def _session(self) -> None:
        # One connection for the session: stores run one after the other, and a batch
        # pays for no trip through the pool.
        async with self._pool.acquire() as conn:
            await self._follow(conn)

    async def _follow(self, conn: Conn) -> None:
        catalog = await load_catalog(conn)
        cursor = await read_cursor(conn)
        write_candles = not await timescale_in_use(conn)
        await self._advance(cursor, self.status.last_event_ts_us)
        call = self._stub.Subscribe(
            epb.SubscribeRequest(from_seq=cursor + 1, linger_ms=self._linger_ms)
        )
        feed: EventFeed[cpb.EngineEvent] = EventFeed(call, self._queue_batches)
        storing: asyncio.Task[None] | None = None
        try:
            self.status.connected = True
            log.info("ingest subscribed from event %d", cursor + 1)
            while True:
                events = await self._next_events(feed, storing)
                # Projected while PostgreSQL still stores the previous batch; stores are
                # awaited one after the other, so they commit in order.
                batch = await _project(events, catalog, cursor + 1)
                cursor = batch.last_seq
                if storing is not None:
                    await storing
                storing = asyncio.create_task(self._store(conn, batch, write_candles))
        finally:
            call.cancel()
            await feed.close()
            if storing is not None:
                storing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await storing

    async def _next_events(
        self, feed: EventFeed[cpb.EngineEvent], storing: asyncio.Task[None] | None
    ) -> list[cpb.EngineEvent]:
        """The next events; a store that fails meanwhile ends the session at once."""
        take = asyncio.ensure_future(feed.take(self._max_batch))
        try:
            if storing is not None and not storing.done():
                await asyncio.wait({take, storing}, return_when=asyncio.FIRST_COMPLETED)
            if storing is not None and storing.done() and storing.exception() is not None:
                await storing  # raises its error
            return await take
        finally:
            take.cancel()  # no-op once it is done

    async def _store(self, conn: Conn, batch: Batch, write_candles: bool) -> None:
        started = time.perf_counter()
        await store(conn, batch, candles=write_candles)
        seconds = time.perf_counter() - started
        if self._on_stored is not None:
            self._on_stored(batch.size, seconds)
        self.status.batches += 1
        self.status.events += batch.size
        await self._advance(batch.last_seq, batch.last_ts_us)

    async def _advance(self, seq: int, ts_us: int) -> None:
        async with self._advanced:
            self.status.last_seq = seq
            self.status.last_event_ts_us = ts_us
            self._advanced.notify_all()


PROJECT_SLICE = 100  # events projected between two chances for the store task to run


async def _project(events: list[cpb.EngineEvent], catalog: Catalog, first_seq: int) -> Batch:
    """Project in slices, yielding between them: the store of the previous batch is then
    sent and its reply taken in time, so PostgreSQL works while this process projects."""
    projector = Projector(catalog, first_seq)
    for start in range(0, len(events), PROJECT_SLICE):
        projector.feed(events[start : start + PROJECT_SLICE])
        await asyncio.sleep(0)
    return projector.finish()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"engine: {exc.code().name} {exc.details()}"
    return f"{type(exc).__name__}: {exc}"
