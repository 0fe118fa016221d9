"""`python -m launcher` end to end: a real launcher process running real PostgreSQL, Redis,
ledger and gateway, and a stand-in engine (the health server helper, as `engine_svc` on the
path) until it receives SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import asyncpg
import pytest

from launcher.health import HttpProbe, check_health
from launcher.ports import free_port
from launcher.postgres import PostgresProbe
from launcher.redis_server import RedisProbe

pytestmark = pytest.mark.timeout(120)

REPO_ROOT = Path(__file__).resolve().parents[2]
HEALTH_SERVER = Path(__file__).with_name("health_server.py")

FAKE_ENGINE = """\
import os, runpy, sys
print("pid", os.getpid(), flush=True)
sys.argv = ["engine_svc", os.environ["ENGINE_GRPC_PORT"]]
runpy.run_path({path!r}, run_name="__main__")
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def read_until(stream: asyncio.StreamReader, marker: str) -> list[str]:
    lines: list[str] = []
    while not lines or marker not in lines[-1]:
        line = await stream.readline()
        if not line:
            raise AssertionError(f"launcher output ended before {marker!r}: {lines}")
        lines.append(line.decode().rstrip("\n"))
    return lines


async def test_runs_the_exchange_until_sigterm_then_stops_it(tmp_path: Path) -> None:
    # The working directory comes first on the child's sys.path, so `-m engine_svc` runs this.
    (tmp_path / "engine_svc").mkdir()
    (tmp_path / "engine_svc" / "__init__.py").write_text("")
    (tmp_path / "engine_svc" / "__main__.py").write_text(
        FAKE_ENGINE.format(path=str(HEALTH_SERVER))
    )
    port, postgres_port, redis_port = free_port(), free_port(), free_port()
    ledger_port, gateway_port = free_port(), free_port()
    env = {
        **os.environ,
        "ENGINE_GRPC_PORT": str(port),
        "LEDGER_GRPC_PORT": str(ledger_port),
        "GATEWAY_PORT": str(gateway_port),
        "STREAM_GRPC_PORT": str(free_port()),
        "STREAM_PUBLISHER_PORT": str(free_port()),
        "EXCHANGE_MM": "off",  # the stand-in engine has no markets to quote
        "POSTGRES_PORT": str(postgres_port),
        "REDIS_PORT": str(redis_port),
        "PYTHONPATH": str(REPO_ROOT),
    }
    for name in ("ENGINE_DATA_DIR", "DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    database_url = f"postgresql://postgres@127.0.0.1:{postgres_port}/exchange"
    redis_url = f"redis://127.0.0.1:{redis_port}/0"

    launcher = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "launcher",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert launcher.stdout is not None
        lines = await asyncio.wait_for(read_until(launcher.stdout, "exchange running"), 60)
        assert f"postgres   {database_url}" in lines
        assert f"redis      {redis_url}" in lines
        assert f"engine     grpc 127.0.0.1:{port}" in lines
        assert f"ledger     grpc 127.0.0.1:{ledger_port}" in lines
        assert f"gateway    http http://127.0.0.1:{gateway_port}" in lines
        engine_pid = next(
            int(line.split()[-1]) for line in lines if line.startswith("[engine] pid")
        )
        assert await check_health(f"127.0.0.1:{port}")
        assert await check_health(f"127.0.0.1:{ledger_port}")
        assert await HttpProbe(f"http://127.0.0.1:{gateway_port}/health").check(timeout=2)
        assert (tmp_path / ".run" / "gateway-secret").exists()
        assert (tmp_path / ".run" / "seal-key").exists()  # HMAC keys work under make run
        assert (tmp_path / ".run" / "engine").is_dir()
        connection = await asyncpg.connect(database_url)
        try:
            assert await connection.fetchval("SELECT current_database()") == "exchange"
        finally:
            await connection.close()
        assert await RedisProbe(redis_url).check(timeout=1)

        launcher.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(launcher.wait(), 20) == 0
        assert not alive(engine_pid)
        assert not await PostgresProbe(database_url).check(timeout=1)
        assert not await RedisProbe(redis_url).check(timeout=1)
    finally:
        if launcher.returncode is None:
            launcher.kill()
            await launcher.wait()
