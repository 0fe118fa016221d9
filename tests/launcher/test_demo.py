"""The demo account of `make run`: created with funds on the first start, unchanged after."""

from __future__ import annotations

from decimal import Decimal

from launcher.demo import DEMO_EMAIL, DEMO_FUNDS, DEMO_PASSWORD, seed_demo_account
from tests.engine.conftest import engine
from tests.gateway.conftest import Stack, ledger_address, stack, stack_factory
from tests.gateway.test_rest import signup

__all__ = ["engine", "ledger_address", "stack", "stack_factory"]


async def test_demo_account_is_made_once_with_funds(stack: Stack) -> None:
    line = await seed_demo_account(stack.url)
    assert DEMO_EMAIL in line
    await seed_demo_account(stack.url)  # a second start changes nothing

    login = await stack.client.post(
        "/api/v1/auth/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    )
    token = (await login.json())["token"]
    capital = await (
        await stack.client.get("/api/v1/capital", headers={"Authorization": f"Bearer {token}"})
    ).json()
    held = {asset: Decimal(capital[asset]["available"]) for asset in DEMO_FUNDS}
    assert held == {asset: Decimal(amount) for asset, amount in DEMO_FUNDS.items()}
    assert await signup(stack, "someone@else.test")  # other users are unaffected
