"""A local Redis server for `make run` and the tests.

`redis-server` runs in the foreground under the Supervisor, configured wholly on its command
line (no config file to keep in step). It listens on 127.0.0.1 only and, for the exchange,
is a bus and a cache: the append-only file keeps it across restarts, RDB snapshots are off
as they would only duplicate it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from launcher.spec import ServiceSpec

LOCALHOST = "127.0.0.1"
DEFAULT_PORT = 6379


@dataclass(frozen=True)
class LocalRedis:
    """A server on 127.0.0.1:`port` keeping its files in `data_dir`."""

    data_dir: Path
    port: int
    appendonly: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", self.data_dir.absolute())

    @property
    def url(self) -> str:
        """How clients reach it, e.g. redis://127.0.0.1:56379/0."""
        return f"redis://{LOCALHOST}:{self.port}/0"

    def spec(self, name: str = "redis") -> ServiceSpec:
        return ServiceSpec(
            name=name,
            argv=[
                "redis-server",
                *("--bind", LOCALHOST),
                *("--port", str(self.port)),
                *("--dir", str(self.data_dir)),
                *("--appendonly", "yes" if self.appendonly else "no"),
                *("--save", ""),
                *("--daemonize", "no"),
            ],
            ready_probe=RedisProbe(self.url),
            prepare=self.prepare,
        )

    async def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class RedisProbe:
    """Readiness of a Redis server: PING answers PONG, which it does not while it is still
    loading its data ("-LOADING"). For a local server: no password, no TLS."""

    url: str

    @property
    def target(self) -> str:
        return self.url

    async def check(self, timeout: float) -> bool:  # noqa: ASYNC109
        parts = urlsplit(self.url)
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    parts.hostname, parts.port or DEFAULT_PORT
                )
                try:
                    writer.write(b"PING\r\n")
                    return await reader.readline() == b"+PONG\r\n"
                finally:
                    writer.close()
        except (OSError, TimeoutError):
            return False
