"""The database connection: one type for pooled and plain connections, and start-up retries."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger(__name__)

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

# What a lost or refused connection raises: the server restarting, going away, not up yet.
# A connection killed mid-query can leave asyncpg's protocol half-switched, which it reports
# as InternalClientError ("cannot switch to state 12; another operation is in progress").
CONNECTION_ERRORS = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.InternalClientError,
)


async def create_pool(dsn: str, *, connect_timeout: float, max_size: int = 8) -> asyncpg.Pool:
    """A pool for `dsn`, retrying while the server is not up yet, for up to `connect_timeout`."""
    deadline = time.monotonic() + connect_timeout
    delay = 0.1
    while True:
        try:
            pool: asyncpg.Pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size)
            return pool
        except CONNECTION_ERRORS as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.info("database not ready (%s); retrying", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
