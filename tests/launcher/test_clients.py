"""The real clients against `python -m launcher`, which `make run` runs: every service as its
own process with the settings the launcher gives them. ccxt's unchanged `backpack` class
moves funds (the onramp's deposit, a custody deposit credited with exchangectl, a
withdrawal) and trades with a user of ccxt's `binance` class on the Binance face."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import ccxt.async_support as ccxt
import pytest

from launcher.ports import free_port
from tests.gateway.binance_client import binance
from tests.launcher.test_main import read_until

pytestmark = pytest.mark.timeout(600)

REPO_ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "TATA/INR"
OUT = "0x" + "0c" * 20
T = TypeVar("T")


@dataclass
class Launched:
    url: str
    engine: str
    run_dir: Path


@pytest.fixture
async def launched(tmp_path: Path) -> AsyncIterator[Launched]:
    gateway_port, engine_port = free_port(), free_port()
    names = ("LEDGER_GRPC_PORT", "STREAM_GRPC_PORT", "STREAM_PUBLISHER_PORT", "POSTGRES_PORT",
             "REDIS_PORT")  # fmt: skip
    env = {
        **os.environ,
        **{name: str(free_port()) for name in names},
        "GATEWAY_PORT": str(gateway_port),
        "ENGINE_GRPC_PORT": str(engine_port),
        "EXCHANGE_MM": "off",  # the book holds only what the test places
        "PYTHONPATH": str(REPO_ROOT),
    }
    for name in ("ENGINE_DATA_DIR", "DATABASE_URL", "REDIS_URL", "ENGINE_ADMIN_TOKEN"):
        env.pop(name, None)
    launcher = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "launcher", cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert launcher.stdout is not None
        await asyncio.wait_for(read_until(launcher.stdout, "exchange running"), 300)
        yield Launched(f"http://127.0.0.1:{gateway_port}", f"127.0.0.1:{engine_port}", tmp_path)
        launcher.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(launcher.wait(), 60) == 0
    finally:
        if launcher.returncode is None:
            launcher.kill()
            await launcher.wait()


async def account(http: aiohttp.ClientSession, email: str, key: dict[str, Any]) -> dict[str, Any]:
    """A new user with funds from the onramp and an API key of `key`'s kind."""
    credentials = {"email": email, "password": "a good password"}
    async with http.post("/api/v1/auth/signup", json=credentials) as response:
        assert response.status == 201, await response.text()
        auth = {"Authorization": f"Bearer {(await response.json())['token']}"}
    for asset, amount in (("TATA", "10"), ("INR", "10000")):
        body = {"asset": asset, "amount": amount}
        async with http.post("/api/v1/onramp", json=body, headers=auth) as response:
            assert response.status == 200, await response.text()
    async with http.post("/api/v1/auth/apikeys", json=key, headers=auth) as response:
        assert response.status == 201, await response.text()
        created: dict[str, Any] = await response.json()
    return created


async def eventually(read: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
    """`read()` once `done` holds of it (history reaches the ledger a moment after)."""
    async with asyncio.timeout(60):
        while not done(value := await read()):  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.2)
    return value


async def exchangectl(launched: Launched, *args: str) -> None:
    run = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exchangectl", "--engine", launched.engine,
        "--token-file", str(launched.run_dir / ".run" / "admin-token"), *args,
        cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await run.communicate()
    assert run.returncode == 0, (out + err).decode()


async def test_ccxt_backpack_and_binance_users_move_funds_and_trade(launched: Launched) -> None:
    async with aiohttp.ClientSession(launched.url) as http:
        scopes = ["read", "trade", "withdraw"]
        alice_key = await account(
            http, "alice@launcher.test", {"label": "ccxt", "permissions": scopes}
        )
        bob_key = await account(http, "bob@launcher.test", {"label": "bot", "type": "hmac"})
    alice = ccxt.backpack(
        {
            "apiKey": alice_key["publicKey"],
            "secret": alice_key["secret"],
            "urls": {"api": {"public": launched.url, "private": launched.url}},
            "enableRateLimit": False,
        }
    )
    bob = binance(launched.url, apiKey=bob_key["apiKey"], secret=bob_key["secret"])
    try:
        await alice.load_markets()
        await bob.load_markets()

        # The onramp's credits are alice's first deposits; custody's is credited on its
        # confirmations, reported by an operator with exchangectl.
        onramp = await alice.fetch_deposits()
        assert sorted((d["currency"], d["amount"], d["status"]) for d in onramp) == [
            ("INR", 10000, "ok"),
            ("TATA", 10, "ok"),
        ]
        address = (await alice.fetch_deposit_address("USDT", {"network": "ERC20"}))["address"]
        await exchangectl(
            launched, "deposit", "credit", "Ethereum", "USDT", address, "250", "txlauncher",
            "--confirmations", "3",
        )  # fmt: skip
        deposits = await alice.fetch_deposits("USDT")
        assert [(d["amount"], d["status"], d["txid"]) for d in deposits] == [
            (250, "ok", "txlauncher")
        ]
        sent = await alice.withdraw("USDT", 20, OUT, {"network": "ERC20"})
        assert (sent["status"], sent["amount"], sent["fee"]["cost"]) == ("pending", 20, 1)
        assert [w["id"] for w in await alice.fetch_withdrawals()] == [sent["id"]]
        usdt = (await alice.fetch_balance())["USDT"]
        assert (usdt["free"], usdt["used"]) == (229, 21)

        # A Backpack user's ask fills a Binance user's bid; both see it in their history.
        ask = await alice.create_order(SYMBOL, "limit", "sell", 2, 1600)
        assert ask["status"] == "open"
        bid = await bob.create_order(SYMBOL, "limit", "buy", 2, 1600)
        assert (bid["status"], bid["filled"]) == ("closed", 2)
        assert (await bob.fetch_balance())["TATA"]["free"] == 12
        mine = await eventually(lambda: alice.fetch_my_trades(SYMBOL), lambda t: len(t) == 1)
        assert (mine[0]["side"], mine[0]["amount"], mine[0]["price"]) == ("sell", 2, 1600)
        theirs = await eventually(lambda: bob.fetch_my_trades(SYMBOL), lambda t: len(t) == 1)
        assert (theirs[0]["side"], theirs[0]["amount"]) == ("buy", 2)
        order = await alice.fetch_order(ask["id"], SYMBOL)
        assert (order["status"], order["filled"]) == ("closed", 2)
    finally:
        await alice.close()
        await bob.close()
