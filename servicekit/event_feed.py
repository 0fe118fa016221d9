"""The engine's event stream read ahead: everything that has arrived, taken in one go.

A follower of Subscribe (the ledger's ingest, the stream publisher) pays per batch it
handles — a transaction, a Redis round trip — more than per event. Reading the stream on its
own task into a bounded queue lets the follower take every batch that arrived while it was
busy as one list, so its batches grow exactly when it is the bottleneck, and the queue's
bound stops a slow follower from buffering the stream without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, Sequence
from typing import Generic, Protocol, TypeVar

E = TypeVar("E")
E_co = TypeVar("E_co", covariant=True)


class Batch(Protocol[E_co]):
    @property
    def events(self) -> Sequence[E_co]: ...


class EventFeed(Generic[E]):
    """Call `take` for the next events; `close` when done (it cancels the reading task)."""

    def __init__(self, stream: AsyncIterable[Batch[E]], max_batches: int = 256) -> None:
        # Events, the stream's error, or its end.
        self._queue: asyncio.Queue[list[E] | Exception | None] = asyncio.Queue(max_batches)
        self._reader = asyncio.create_task(self._read(stream))

    async def take(self, limit: int) -> list[E]:
        """Everything queued now (at least one batch, waiting for it), up to about `limit`
        events. Raises the stream's error, or ConnectionError when it ended, once the
        events before are delivered."""
        first = await self._queue.get()
        if not isinstance(first, list):
            raise first or ConnectionError("the engine closed the event stream")
        events = first
        while len(events) < limit and not self._queue.empty():
            more = self._queue.get_nowait()
            if not isinstance(more, list):
                # The reader puts nothing after the end, so there is room for it again.
                self._queue.put_nowait(more)
                break
            events.extend(more)
        return events

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def _read(self, stream: AsyncIterable[Batch[E]]) -> None:
        try:
            async for batch in stream:
                await self._queue.put(list(batch.events))
        except Exception as exc:
            await self._queue.put(exc)
        else:
            await self._queue.put(None)
