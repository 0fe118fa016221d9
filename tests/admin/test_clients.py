"""The engine's trusted callers carry ENGINE_ADMIN_TOKEN: the gateway's faucet, the market
maker's funding, and the launcher, which hands one token per data folder to all of them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest

from exchange.engine.v1 import engine_pb2 as epb
from gateway_svc.settings import GatewaySettings
from launcher.stack import StackSettings, exchange_specs
from mm_svc.engine import top_up
from mm_svc.settings import MmSettings
from tests.admin.conftest import TOKEN
from tests.engine.conftest import RunningEngine
from tests.gateway.conftest import stack_factory
from tests.gateway.test_rest import signup
from tradekit.engine_client import EngineClient

__all__ = ["stack_factory"]


async def test_the_faucet_deposits_with_the_gateways_token(
    stack_factory: Any, engine: RunningEngine
) -> None:
    stack = await stack_factory(engine_admin_token=TOKEN)
    _, auth = await signup(stack, "faucet@example.com")
    response = await stack.client.post(
        "/api/v1/onramp", json={"asset": "INR", "amount": "250"}, headers=auth
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["available"] == "250.00"


async def test_a_gateway_without_the_token_cannot_deposit(
    stack_factory: Any, engine: RunningEngine
) -> None:
    stack = await stack_factory()  # no engine_admin_token
    _, auth = await signup(stack, "faucet@example.com")
    seq = engine.runtime.engine.seq
    response = await stack.client.post(
        "/api/v1/onramp", json={"asset": "INR", "amount": "250"}, headers=auth
    )
    assert response.status == 503
    assert engine.runtime.engine.seq == seq


async def test_the_market_maker_funds_itself_with_its_token(engine: RunningEngine) -> None:
    async with grpc.aio.insecure_channel(engine.address) as channel:
        client = EngineClient(channel, admin_token=TOKEN)
        deposited = await top_up(client, 77, {"USDT": Decimal("1000"), "BTC": Decimal("2")})
        await client.close()
    assert deposited == {"USDT": Decimal("1000"), "BTC": Decimal("2")}
    reply = await engine.stub.GetBalances(epb.GetBalancesRequest(user_id=77))
    assert {b.asset: b.available for b in reply.balances} == {
        "BTC": "2.00000000",
        "USDT": "1000.000000",
    }


def test_the_gateway_and_the_maker_read_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("GATEWAY_TOKEN_SECRET", "x" * 32)
    assert GatewaySettings.from_env().engine_admin_token == TOKEN
    assert MmSettings.from_env(50061, 9161).engine_admin_token == TOKEN
    assert TOKEN not in repr(GatewaySettings.from_env())


def test_the_launcher_gives_one_token_per_data_folder_to_its_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENGINE_ADMIN_TOKEN", raising=False)
    settings = StackSettings.from_env({}, cwd=tmp_path)
    specs = {spec.name: spec for spec in exchange_specs(settings)}
    token = specs["engine"].env["ENGINE_ADMIN_TOKEN"]
    assert len(token) >= 32
    for name in ("gateway", "mm", "flow"):
        assert specs[name].env["ENGINE_ADMIN_TOKEN"] == token
    for name in ("ledger", "publisher", "stream"):
        assert "ENGINE_ADMIN_TOKEN" not in specs[name].env
    saved = tmp_path / ".run" / "admin-token"
    assert saved.read_text() == token
    assert saved.stat().st_mode & 0o777 == 0o600
    again = {spec.name: spec for spec in exchange_specs(StackSettings.from_env({}, cwd=tmp_path))}
    assert again["engine"].env["ENGINE_ADMIN_TOKEN"] == token  # kept across restarts
    monkeypatch.setenv("ENGINE_ADMIN_TOKEN", TOKEN)
    given = {spec.name: spec for spec in exchange_specs(settings)}
    assert given["engine"].env["ENGINE_ADMIN_TOKEN"] == TOKEN
