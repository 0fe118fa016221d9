"""Local PostgreSQL and Redis under the Supervisor: real servers with their data in tmp_path,
as `make run` runs them."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio

from launcher.ports import free_port
from launcher.postgres import NO_DISK_WAIT, LocalPostgres, PostgresProbe
from launcher.redis_server import LocalRedis, RedisProbe
from launcher.supervisor import ServiceStartError, Supervisor

pytestmark = pytest.mark.timeout(120)


async def fetch_one(url: str, sql: str) -> object:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


async def test_postgres_cluster_is_made_once_and_serves_the_exchange_database(
    tmp_path: Path,
) -> None:
    server = LocalPostgres(tmp_path / "postgres", free_port())
    # What an initdb interrupted by Ctrl-C leaves behind.
    (tmp_path / "postgres.initdb").mkdir()
    (tmp_path / "postgres.initdb" / "PG_VERSION").write_text("15\n")

    async with Supervisor([server.spec()], grace=5):
        assert await fetch_one(server.url, "SELECT current_database()") == "exchange"
        assert await fetch_one(server.url, "SHOW listen_addresses") == "127.0.0.1"
        assert await fetch_one(server.url, "SHOW unix_socket_directories") == str(server.data_dir)
        await fetch_one(server.url, "CREATE TABLE kept AS SELECT 7 AS n")
    assert not (tmp_path / "postgres.initdb").exists()
    if os.geteuid() == 0:
        assert server.data_dir.stat().st_uid == pwd.getpwnam("postgres").pw_uid
    rules = [
        line.split()
        for line in (server.data_dir / "pg_hba.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {rule[-1] for rule in rules} == {"trust"}
    assert {rule[3] for rule in rules if rule[0] == "host"} == {"127.0.0.1/32", "::1/128"}

    # A second start finds the cluster and the database: neither is made again.
    async with Supervisor([server.spec()], grace=5):
        assert await fetch_one(server.url, "SELECT n FROM kept") == 7


async def test_prepare_refuses_a_folder_that_is_not_a_cluster(tmp_path: Path) -> None:
    (tmp_path / "postgres").mkdir()
    (tmp_path / "postgres" / "notes.txt").write_text("mine")
    server = LocalPostgres(tmp_path / "postgres", free_port())

    with pytest.raises(ServiceStartError, match="neither empty nor a PostgreSQL cluster"):
        await Supervisor([server.spec()]).start()
    assert (tmp_path / "postgres" / "notes.txt").read_text() == "mine"


async def test_killed_postgres_is_restarted_with_its_data(tmp_path: Path) -> None:
    server = LocalPostgres(tmp_path / "postgres", free_port(), settings=NO_DISK_WAIT)

    async with Supervisor([server.spec()], grace=5) as sup:
        await fetch_one(server.url, "CREATE TABLE kept AS SELECT 7 AS n")
        old_pid = sup.pid("postgres")
        await sup.kill("postgres")
        await sup.wait_healthy("postgres", timeout=60)

        assert sup.pid("postgres") != old_pid
        assert sup.restarts("postgres") == 1
        assert await fetch_one(server.url, "SELECT n FROM kept") == 7
    assert not await PostgresProbe(server.url).check(timeout=1)


async def test_redis_answers_ping_and_is_restarted_with_its_data(tmp_path: Path) -> None:
    server = LocalRedis(tmp_path / "redis", free_port())

    async with Supervisor([server.spec()], grace=5) as sup:
        async with redis.asyncio.Redis.from_url(server.url) as client:
            assert await client.ping()
            await client.set("greeting", "hello")
        await sup.kill("redis")
        await sup.wait_healthy("redis", timeout=30)

        assert sup.restarts("redis") == 1
        async with redis.asyncio.Redis.from_url(server.url) as client:
            assert await client.get("greeting") == b"hello"
    assert (server.data_dir / "appendonlydir").is_dir()
    assert not await RedisProbe(server.url).check(timeout=1)


async def test_a_second_server_on_a_port_in_use_is_refused(tmp_path: Path) -> None:
    port = free_port()
    first = LocalRedis(tmp_path / "first", port)
    second = LocalRedis(tmp_path / "second", port)

    async with Supervisor([first.spec()], grace=5):
        with pytest.raises(ServiceStartError, match="something already answers at redis://"):
            await Supervisor([second.spec()], grace=5).start()


async def test_probes_fail_when_nothing_listens() -> None:
    port = free_port()

    assert not await PostgresProbe(f"postgresql://postgres@127.0.0.1:{port}/x").check(1)
    assert not await RedisProbe(f"redis://127.0.0.1:{port}/0").check(1)


async def test_fixture_database_is_new_and_empty(database_url: str, postgres_dsn: str) -> None:
    tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    assert await fetch_one(database_url, tables) == 0
    assert await fetch_one(database_url, "SELECT current_database()") != await fetch_one(
        postgres_dsn, "SELECT current_database()"
    )


async def test_fixture_redis_is_empty(redis_url: str) -> None:
    async with redis.asyncio.Redis.from_url(redis_url) as client:
        assert await client.ping()
        assert await client.dbsize() == 0
