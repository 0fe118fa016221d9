"""deploy/postgres-entrypoint.sh, the start of the local PostgreSQL image, run here on the
machine's own PostgreSQL as the `postgres` user: it makes the cluster with the user, password
and database it is given, serves TCP clients with passwords, keeps the data on a second
start, and says why when it cannot write its data folder."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import asyncpg
import pytest

from launcher.osuser import as_user, hand_over
from launcher.ports import free_port
from tests.deploy.manifests import REPO

ENTRYPOINT = REPO / "deploy" / "postgres-entrypoint.sh"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "s3cret-for-the-test"
USER = "postgres" if os.geteuid() == 0 else None  # PostgreSQL refuses to run as root
pytestmark = pytest.mark.skipif(not PG_BIN.is_dir(), reason="Debian's PostgreSQL 15 is not here")


class Server:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.log = data.parent / f"entrypoint-{self.port}.log"

    def start(self) -> subprocess.Popen[bytes]:
        env = {
            "PATH": f"{PG_BIN}:{os.environ['PATH']}",
            "PGDATA": str(self.data / "pgdata"),
            "POSTGRES_USER": "exchange",
            "POSTGRES_DB": "exchange",
            "POSTGRES_PASSWORD": PASSWORD,
        }
        argv = [str(ENTRYPOINT), "postgres", "-c", f"port={self.port}",
                "-c", "listen_addresses=127.0.0.1",
                "-c", f"unix_socket_directories={self.data}"]  # fmt: skip
        with self.log.open("wb") as log:
            return subprocess.Popen(as_user(USER, argv), env=env, stderr=log)

    async def connect(self, password: str) -> asyncpg.Connection:
        connection: asyncpg.Connection = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="exchange", password=password,
            database="exchange", timeout=5,
        )  # fmt: skip
        return connection

    async def ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, self.log.read_text()
            try:
                await (await self.connect(PASSWORD)).close()
                return
            except (OSError, asyncpg.CannotConnectNowError):
                await asyncio.sleep(0.2)
        raise AssertionError(f"not ready:\n{self.log.read_text()}")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    if USER:
        hand_over(folder, USER)
    return folder


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=60)


async def test_a_new_cluster_serves_passwords_over_tcp_and_keeps_its_data(data: Path) -> None:
    server = Server(data)
    process = server.start()
    try:
        await server.ready(process)
        connection = await server.connect(PASSWORD)
        await connection.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)")
        await connection.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await server.connect("not-the-password")
    finally:
        stop(process)
    first = server.log.read_text()
    assert "initdb of" in first
    assert "cluster made, database exchange" in first

    again = Server(data)
    process = again.start()
    try:
        await again.ready(process)
        connection = await again.connect(PASSWORD)
        assert await connection.fetchval("SELECT n FROM kept") == 7
        await connection.close()
    finally:
        stop(process)
    assert "initdb of" not in again.log.read_text()


@pytest.mark.skipif(USER is None, reason="the folder is made unwritable for postgres by root")
def test_a_data_folder_it_cannot_write_is_named(tmp_path: Path) -> None:
    (tmp_path / "reachable").mkdir()
    hand_over(tmp_path / "reachable", "postgres")  # postgres may reach tmp_path's folders
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o755)  # root's: postgres may not create PGDATA in it
    server = Server(locked)
    process = server.start()
    assert process.wait(timeout=60) == 1
    assert f"cannot write {locked}/pgdata" in server.log.read_text()
