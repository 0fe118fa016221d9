"""Identical reads in flight at once share one backend call.

Many clients polling the same market's depth or trades ask the same question over and over;
a unary gRPC call (and its rendering to JSON) costs far more than handing out a ready answer.
A read joins the next call for its key, which starts at the end of the current turn of the
event loop, or when the key's call in flight ends: never an earlier call. So a reader still
sees everything that happened before its request arrived (a client that placed an order and
then asks for the depth sees its order), and each key has at most one call in flight.

The shared call runs in the context (request id) of the request that started it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    def __init__(self, fetch: Callable[[K], Awaitable[V]]) -> None:
        self._fetch = fetch
        self._next: dict[K, asyncio.Future[V]] = {}  # the call readers join, not started yet
        self._running: set[K] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # referenced until done

    async def get(self, key: K) -> V:
        """`fetch(key)`, from a call that starts after this request arrived."""
        future = self._next.get(key)
        if future is None:
            loop = asyncio.get_running_loop()
            future = self._next[key] = loop.create_future()
            if key not in self._running:
                loop.call_soon(self._start, key)  # the rest of this turn's readers join
        # One reader giving up (cancelled) must not cancel the call the others wait for.
        return await asyncio.shield(future)

    def _start(self, key: K) -> None:
        future = self._next.pop(key)
        self._running.add(key)
        task = asyncio.ensure_future(self._run(key, future))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: K, future: asyncio.Future[V]) -> None:
        try:
            result = await self._fetch(key)
        except Exception as error:
            future.set_exception(error)
            future.exception()  # retrieved: no warning when every reader has gone
        except BaseException:  # cancelled (shutting down)
            future.cancel()
            raise
        else:
            future.set_result(result)
        finally:
            self._running.discard(key)
            if key in self._next:  # readers arrived while this call was running
                self._start(key)
