"""Redis commands of one turn of the event loop, sent together in one round trip.

Under load many requests are handled in the same turn of the event loop, and each needs
Redis (its rate limit, its signature's first use). One round trip per request costs each
of them a pooled connection, a write, a wake-up and a read; gathered, the turn costs one
of each, and a request pays only for packing its command and parsing its reply. A lone
request waits for nothing: its turn ends as soon as it has been handled.

The turn's commands are packed by hiredis (`pack`), written on one pooled connection at
once and their replies read back, without redis-py's `Pipeline`: its per-pipeline
bookkeeping (command stack, observability hooks, prepared-field folding, the reset) and its
packer in Python (an encoder call and a join per argument) cost more CPU than the order's
whole Redis step otherwise does (reports/order-path-profile.md, session 17). Like a
pipeline's, the commands are independent (no transaction): each gets its own reply or
error, and a failure to reach Redis, after the connection's one retry, fails every command
of the turn with that error.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import hiredis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

POOL_SIZE = 256
KEEP_IDLE = 2
Arg = str | int | bytes  # what our commands are made of: names, keys, counts
Waiting = list[tuple[tuple[Arg, ...], asyncio.Future[Any]]]


def gateway_redis(url: str) -> Redis:
    """The gateway's Redis client. One quick retry at most: while Redis is down, requests
    should fail fast with 503. A blocking pool: under a burst, requests wait briefly for a
    connection instead of failing once the pool's size is reached."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=2,
        socket_timeout=2,
        socket_connect_timeout=2,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
    )
    return Redis(connection_pool=pool)


def pack(commands: list[tuple[Arg, ...]]) -> bytes:
    """The commands in the Redis protocol, packed by hiredis in C (as redis-py packs them)."""
    # hiredis's stub types the command as a tuple of one item; it takes any number.
    return b"".join([hiredis.pack_command(args) for args in commands])  # type: ignore[arg-type]


class RedisBatch:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._waiting: Waiting = []
        self._sending: set[asyncio.Task[None]] = set()  # referenced until done
        # Connections kept checked out of the pool between turns (the pool counts them as in
        # use): checking one out and back in per turn cost a third of the turn's CPU. Turns
        # rarely overlap; connections beyond KEEP_IDLE go back, so a burst of overlapping
        # turns does not keep the pool's connections from its other users.
        self._idle: list[Connection] = []

    async def execute(self, *args: Arg) -> Any:
        """Run one command in this turn's round trip; its reply, or its error raised."""
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

    async def _send(self, commands: Waiting) -> None:
        pool = self.redis.connection_pool
        replies: list[Any]
        try:
            if self._idle:
                connection = self._idle.pop()
            else:
                connection = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                replies = await connection.retry.call_with_retry(
                    lambda: _round_trip(connection, commands),
                    lambda _error: connection.disconnect(),
                )
            finally:
                # In step whatever happened: a round trip reads every reply or disconnects
                # (and the next one connects again), so the pool's check is not needed.
                if len(self._idle) < KEEP_IDLE:
                    self._idle.append(connection)
                else:
                    await pool.release(connection)
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


async def _round_trip(connection: Connection, commands: Waiting) -> list[Any]:
    """Every command written at once, then every reply read (an error reply as its
    ResponseError), so the connection is never left with replies unread. The replies are
    read under one deadline, the connection's socket timeout, rather than one each (a
    timer apiece); a read cut short disconnects, as redis-py's own timeout does."""
    await connection.send_packed_command(pack([args for args, _ in commands]))
    replies: list[Any] = []
    try:
        async with asyncio.timeout(connection.socket_timeout):
            for _ in commands:
                try:
                    replies.append(await connection.read_response(timeout=math.inf))
                except ResponseError as error:
                    replies.append(error)
    except TimeoutError:
        raise RedisTimeoutError("Timeout reading from Redis") from None
    return replies
