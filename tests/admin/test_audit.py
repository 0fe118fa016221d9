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
