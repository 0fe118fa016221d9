"""The audit log: what the gateway and exchangectl record, read back with `exchangectl audit`,
and a table that refuses every change."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from tests.admin.conftest import Ctl
from tests.gateway.conftest import Stack, stack_factory

__all__ = ["stack_factory"]

PASSWORD = {"email": "audited@example.com", "password": "a good password"}


async def audit(ctl: Ctl, *argv: str) -> list[dict[str, Any]]:
    outcome = await ctl("--json", "audit", *argv)
    assert outcome.status == 0, outcome
    records: list[dict[str, Any]] = json.loads(outcome.out)["records"]
    return records


async def test_account_actions_are_recorded_with_actor_address_and_request_id(
    stack_factory: Any, ctl: Ctl
) -> None:
    stack: Stack = await stack_factory()
    client = stack.client
    signup = await (await client.post("/api/v1/auth/signup", json=PASSWORD)).json()
    user = int(signup["userId"])
    wrong = {**PASSWORD, "password": "not the password"}
    assert (await client.post("/api/v1/auth/login", json=wrong)).status == 401
    login = await client.post("/api/v1/auth/login", json=PASSWORD, headers={"X-Request-Id": "r-1"})
    auth = {"Authorization": f"Bearer {(await login.json())['token']}"}
    key = await (
        await client.post(
            "/api/v1/auth/apikeys",
            json={"permissions": ["read"], "ipAllowlist": ["127.0.0.0/8"]},
            headers=auth,
        )
    ).json()
    revoked = await client.delete(
        "/api/v1/auth/apikeys", json={"keyId": key["keyId"]}, headers=auth
    )
    assert revoked.status == 200

    records = await audit(ctl, "--user", str(user))
    assert [r["action"] for r in records] == ["apikey_revoke", "apikey_create", "login", "signup"]
    assert {r["address"] for r in records} == {"127.0.0.1"}
    assert all(r["request_id"] and r["time"] for r in records)
    assert {r["actor"] for r in records} == {f"user:{user}"}
    assert records[2]["request_id"] == "r-1"
    created = records[1]["details"]
    assert (created["keyId"], created["permissions"], created["ipAllowlist"]) == (
        key["keyId"],
        ["read"],
        ["127.0.0.0/8"],
    )
    (failed,) = await audit(ctl, "--action", "login_failed")
    assert (failed["actor"], failed["address"], failed["user_id"]) == (
        PASSWORD["email"],
        "127.0.0.1",
        None,
    )


async def test_admin_actions_are_recorded_as_the_operator(ctl: Ctl) -> None:
    assert (await ctl("markets", "halt", "TATA_INR")).status == 0
    assert (await ctl("credit", "7", "INR", "12.50")).status == 0
    credit, halt = await audit(ctl)
    assert (halt["action"], halt["details"]["symbol"]) == ("market_halt", "TATA_INR")
    assert (credit["action"], credit["user_id"], credit["details"]["amount"]) == (
        "deposit_credit",
        7,
        "12.50",
    )
    assert halt["actor"].startswith("admin:")
    text = await ctl("audit")
    assert "market_halt" in text.out


async def test_the_audit_table_refuses_changes(ctl: Ctl, database_url: str) -> None:
    assert (await ctl("markets", "halt", "TATA_INR")).status == 0
    conn = await asyncpg.connect(database_url)
    try:
        for statement in (
            "UPDATE audit_log SET actor = 'someone else'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 1
    finally:
        await conn.close()


async def test_a_withdrawal_request_is_recorded_once_with_its_figures(
    stack_factory: Any, ctl: Ctl
) -> None:
    stack: Stack = await stack_factory()
    client = stack.client
    signup = await (await client.post("/api/v1/auth/signup", json=PASSWORD)).json()
    user, auth = int(signup["userId"]), {"Authorization": f"Bearer {signup['token']}"}
    where = {"symbol": "USDT", "blockchain": "Ethereum"}
    response = await client.get("/wapi/v1/capital/deposit/address", params=where, headers=auth)
    address = (await response.json())["address"]
    credited = await ctl("deposit", "credit", "Ethereum", "USDT", address, "100", "0xin",
                         "--confirmations", "3")  # fmt: skip
    assert credited.status == 0, credited
    body = {**where, "quantity": "10", "address": "0x" + "0b" * 20, "clientId": 5}
    for _ in range(2):  # the retry is the same withdrawal, not a second request
        sent = await client.post("/wapi/v1/capital/withdrawals", json=body, headers=auth)
        assert sent.status == 200, await sent.text()
    (record,) = await audit(ctl, "--action", "withdrawal_request")
    assert (record["actor"], record["user_id"], record["address"]) == (
        f"user:{user}",
        user,
        "127.0.0.1",
    )
    details = record["details"]
    assert (details["quantity"], details["fee"], details["clientId"], details["via"]) == (
        "10.000000",
        "1.000000",
        5,
        "token",
    )
    (report,) = await audit(ctl, "--action", "deposit_report")
    assert report["user_id"] == user
