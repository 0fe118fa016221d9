"""Redis commands of one turn of the event loop, sent together as one pipeline.

Under load many requests are handled in the same turn of the event loop, and each needs
Redis (its rate limit, its signature's first use). One round trip per request costs each
of them a pooled connection, a write, a wake-up and a read; gathered, the turn costs one
of each, and a request pays only for packing its command and parsing its reply. A lone
request waits for nothing: its turn ends as soon as it has been handled.

Commands are independent (no transaction): each gets its own reply or error. A failure
to reach Redis fails every command of the pipeline with that error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.typing import EncodableT


class RedisBatch:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._waiting: list[tuple[tuple[EncodableT, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()  # referenced until done

    async def execute(self, *args: EncodableT) -> Any:
        """Run one command in this turn's pipeline; its reply, or its error raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._flush)
        self._waiting.append((args, future))
        return await future

    def _flush(self) -> None:
        commands, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._send(commands))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(
        self, commands: list[tuple[tuple[EncodableT, ...], asyncio.Future[Any]]]
    ) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for args, _ in commands:
                    pipe.execute_command(*args)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as error:
            replies = [error] * len(commands)
        except BaseException:  # cancelled (shutting down): nobody is left to answer
            for _, future in commands:
                future.cancel()
            raise
        for (_, future), reply in zip(commands, replies, strict=True):
            if future.done():  # its caller stopped waiting
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
