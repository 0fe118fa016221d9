"""An engine that requires the admin token and a ledger following it, both in-process on
ephemeral ports with real PostgreSQL; `ctl` runs exchangectl's main() against them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from engine_svc.server import EngineRuntime, create_server
from exchange.engine.v1 import engine_pb2_grpc as epb_grpc
from exchangectl.cli import main
from ledger_svc.server import LedgerRuntime
from tests.engine.conftest import RunningEngine, engine_settings
from tests.gateway.conftest import ledger_address

__all__ = ["ledger_address"]

TOKEN = "admin-token-for-tests-0123456789abcdef"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[RunningEngine]:
    """The engine of tests/engine/conftest.py, with ENGINE_ADMIN_TOKEN set."""
    runtime = EngineRuntime(engine_settings(tmp_path, admin_token=TOKEN))
    await runtime.start()
    server, _, port = create_server(runtime, "127.0.0.1:0")
    await server.start()
    address = f"127.0.0.1:{port}"
    async with grpc.aio.insecure_channel(address) as channel:
        yield RunningEngine(epb_grpc.EngineServiceStub(channel), runtime, address)
    await server.stop(0)
    await runtime.stop()


@dataclass(frozen=True)
class Outcome:
    status: int
    out: str
    err: str


Ctl = Callable[..., Awaitable[Outcome]]


@pytest.fixture
def ctl(
    engine: RunningEngine,
    ledger_address: tuple[str, LedgerRuntime],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Ctl:
    """`await ctl("markets", "list")`: exchangectl with the admin token in its environment.

    main() runs in a thread with its own event loop, as it would in its own process, while
    the engine and the ledger keep serving on the test's loop."""
    monkeypatch.setenv("ENGINE_ADMIN_TOKEN", TOKEN)
    address, _ = ledger_address

    async def run(*argv: str, token: bool = True) -> Outcome:
        if not token:
            monkeypatch.delenv("ENGINE_ADMIN_TOKEN")
        try:
            args = ["--engine", engine.address, "--ledger", address, *argv]
            status = await asyncio.to_thread(main, args)
        finally:
            monkeypatch.setenv("ENGINE_ADMIN_TOKEN", TOKEN)
        out, err = capsys.readouterr()
        return Outcome(status, out, err)

    return run
