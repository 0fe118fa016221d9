"""EventFeed: batches that arrived while the follower was busy come out as one list."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from servicekit.event_feed import EventFeed


@dataclass
class FakeBatch:
    events: list[int]


async def batches(
    groups: list[list[int]], sent: asyncio.Event, error: Exception | None = None
) -> AsyncIterator[FakeBatch]:
    for group in groups:
        yield FakeBatch(group)
    sent.set()
    if error is not None:
        raise error


async def test_everything_queued_is_taken_at_once_then_the_end_is_told() -> None:
    sent = asyncio.Event()
    feed = EventFeed(batches([[1, 2], [3], [4, 5, 6]], sent))
    try:
        await sent.wait()  # all three batches are queued before the follower asks
        assert await feed.take(limit=100) == [1, 2, 3, 4, 5, 6]
        with pytest.raises(ConnectionError):
            await feed.take(limit=100)
    finally:
        await feed.close()


async def test_the_limit_splits_and_an_error_comes_after_the_events_before_it() -> None:
    sent = asyncio.Event()
    feed = EventFeed(batches([[1, 2], [3, 4], [5]], sent, RuntimeError("engine gone")))
    try:
        await sent.wait()
        await asyncio.sleep(0)  # the reader queues the error too
        assert await feed.take(limit=3) == [1, 2, 3, 4]  # whole batches, up to about 3
        assert await feed.take(limit=3) == [5]
        with pytest.raises(RuntimeError, match="engine gone"):
            await feed.take(limit=3)
    finally:
        await feed.close()


async def test_a_follower_waits_for_the_first_batch() -> None:
    queue: asyncio.Queue[list[int]] = asyncio.Queue()

    async def slow() -> AsyncIterator[FakeBatch]:
        while True:
            yield FakeBatch(await queue.get())

    feed = EventFeed(slow())
    try:
        take = asyncio.ensure_future(feed.take(limit=10))
        await asyncio.sleep(0.01)
        assert not take.done()
        queue.put_nowait([7])
        assert await asyncio.wait_for(take, 30) == [7]
    finally:
        await feed.close()
