"""Real PostgreSQL and Redis for the whole suite, started once per session by the launcher's
own code, on free ports, with their data in pytest's temporary folder.

- `postgres_dsn` (session): URL of the server's maintenance database, to administer it.
- `timescale_dsn` (session): the same for a second server, preloading TimescaleDB; started
  by the first test that needs it, skipped where `make deps` could not build it.
- `database_url`: a new, empty database for one test, dropped after it: on the plain server,
  or on the TimescaleDB one where the test is parametrized with `@BOTH_BACKENDS`.
- `redis_server` (session): URL of the Redis server.
- `redis_url`: the same URL, after emptying the server, for one test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest
import pytest_asyncio
import redis

from launcher.ports import free_port
from launcher.postgres import (
    MAINTENANCE_DATABASE,
    UNSAFE_FAST,
    LocalPostgres,
    create_database,
    quote_identifier,
    timescale_bin_dir,
)
from launcher.redis_server import LocalRedis
from launcher.spec import ServiceSpec
from launcher.supervisor import Supervisor


def _supervisor(spec: ServiceSpec) -> Supervisor:
    # The server writes straight to pytest's capture: relaying its output through a pipe
    # needs the session's event loop, which does not run while a test runs in its own, and
    # a full pipe would stall the server.
    return Supervisor([spec], grace=5, prefix_output=False)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def postgres_dsn(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    server = LocalPostgres(
        tmp_path_factory.mktemp("postgres") / "data",
        free_port(),
        database=MAINTENANCE_DATABASE,
        settings=UNSAFE_FAST,
    )
    async with _supervisor(server.spec()):
        yield server.url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def timescale_dsn(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    if timescale_bin_dir() is None:
        pytest.skip("TimescaleDB is not built here: `make deps` builds it from ../shared/vendor")
    server = LocalPostgres(
        tmp_path_factory.mktemp("timescale") / "data",
        free_port(),
        database=MAINTENANCE_DATABASE,
        settings=UNSAFE_FAST,
        timescale=True,
    )
    async with _supervisor(server.spec("timescale")):
        yield server.url


# The ledger's two tracks: plain PostgreSQL (candles kept by ingest) and TimescaleDB
# (hypertable, continuous aggregates, policies). Overrides the `backend` fixture below.
BOTH_BACKENDS = pytest.mark.parametrize("backend", ["plain", "timescale"])


@pytest.fixture
def backend() -> str:
    return "plain"


@pytest.fixture
def server_dsn(backend: str, request: pytest.FixtureRequest) -> str:
    """The maintenance URL of the server of `backend`."""
    name = "timescale_dsn" if backend == "timescale" else "postgres_dsn"
    return str(request.getfixturevalue(name))


@pytest_asyncio.fixture
async def database_url(server_dsn: str) -> AsyncIterator[str]:
    name = f"test_{uuid.uuid4().hex}"
    url = urlsplit(server_dsn)._replace(path=f"/{name}").geturl()
    await create_database(url)
    yield url
    connection = await asyncpg.connect(server_dsn)
    try:
        # FORCE: the test may have left connections open.
        await connection.execute(f"DROP DATABASE {quote_identifier(name)} WITH (FORCE)")
    finally:
        await connection.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def redis_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    server = LocalRedis(tmp_path_factory.mktemp("redis"), free_port(), appendonly=False)
    async with _supervisor(server.spec()):
        yield server.url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    with redis.Redis.from_url(redis_server) as client:
        client.flushall()
    return redis_server
