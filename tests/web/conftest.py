"""Browser tests: Debian's chromium, driven headless by Playwright, against the whole live
stack in-process (engine, ledger, publisher, stream_svc, gateway) with the gateway serving
the real build of web/ (`make web`, which `make test` runs first).

Screenshots go to tests/web/artifacts/ (ignored by git)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.stream.conftest import engine, ledger_address, live, stack_factory

__all__ = ["engine", "ledger_address", "live", "stack_factory"]

ARTIFACTS = Path(__file__).parent / "artifacts"
WEB_BUILD = Path(__file__).parents[2] / "web" / "dist" / "index.html"
# Chromium, as root and with no network but loopback: no sandbox (Playwright's default),
# and none of the background connections that would be refused at every start.
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

expect.set_options(timeout=20_000)


def chromium_path() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("Debian's chromium is not installed: run `make test` (it installs it)")
    return found


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not WEB_BUILD.is_file():
        pytest.fail("web/dist is not built: run `make web` (or `make test`)")
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()
