"""One request followed by its id: HTTP → gateway → the engine's and the ledger's JSON logs."""

from __future__ import annotations

import logging

import orjson
import pytest

from servicekit.logs import JsonFormatter
from tests.gateway.conftest import Stack


@pytest.fixture
def json_lines(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Log lines as the services write them: formatted when emitted, in the call's context."""
    caplog.handler.setFormatter(JsonFormatter("test"))
    caplog.set_level(logging.DEBUG, logger="engine_svc.command_log")
    caplog.set_level(logging.DEBUG, logger="servicekit.request_ids")
    return caplog


def lines_with(caplog: pytest.LogCaptureFixture, rid: str) -> list[dict[str, object]]:
    entries = [orjson.loads(line) for line in caplog.text.splitlines() if line.startswith("{")]
    return [e for e in entries if e.get("request_id") == rid]


async def test_an_order_is_followed_from_http_into_the_engine_and_the_ledger(
    stack: Stack, json_lines: pytest.LogCaptureFixture
) -> None:
    client = stack.client
    signup = await client.post(
        "/api/v1/auth/signup",
        json={"email": "trace@example.com", "password": "a good password"},
        headers={"X-Request-Id": "req-signup-1"},
    )
    assert signup.status == 201, await signup.text()
    assert signup.headers["X-Request-Id"] == "req-signup-1"
    body = await signup.json()
    user, auth = int(body["userId"]), {"Authorization": f"Bearer {body['token']}"}

    calls = [e.get("rpc") for e in lines_with(json_lines, "req-signup-1")]
    assert "CreateUser" in calls, calls  # logged by the ledger, in the call's context

    funded = await client.post(
        "/api/v1/onramp",
        json={"asset": "INR", "amount": "5000"},
        headers={**auth, "X-Request-Id": "req-fund-2"},
    )
    assert funded.status == 200, await funded.text()
    deposits = [e for e in lines_with(json_lines, "req-fund-2") if e.get("command") == "deposit"]
    assert [(d["user"], d["asset"], d["code"]) for d in deposits] == [(user, "INR", "OK")]

    order = {"market": "TATA_INR", "price": "1000", "quantity": "2", "side": "buy"}
    placed = await client.post(
        "/api/v1/order", json={**order, "userId": user}, headers={**auth, "X-Request-Id": "req-3"}
    )
    assert placed.status == 200, await placed.text()
    order_id = int((await placed.json())["orderId"])
    [line] = [e for e in lines_with(json_lines, "req-3") if e.get("command") == "place_order"]
    assert (line["level"], line["user"], line["market"], line["order_id"]) == (
        "debug",
        user,
        "TATA_INR",
        order_id,
    )

    # A rejection is logged at INFO, with why.
    too_big = {**order, "quantity": "100", "userId": user}
    refused = await client.post(
        "/api/v1/order", json=too_big, headers={**auth, "X-Request-Id": "req-4"}
    )
    assert refused.status >= 400
    [line] = [e for e in lines_with(json_lines, "req-4") if e.get("command") == "place_order"]
    assert (line["level"], line["code"]) == ("info", "INSUFFICIENT_FUNDS"), line
    assert line["reason"]


async def test_the_gateway_assigns_an_id_when_the_client_gives_none(
    stack: Stack, json_lines: pytest.LogCaptureFixture
) -> None:
    reply = await stack.client.post(
        "/api/v1/auth/signup", json={"email": "noid@example.com", "password": "a good password"}
    )
    assert reply.status == 201, await reply.text()
    rid = reply.headers["X-Request-Id"]
    assert len(rid) == 32
    assert "CreateUser" in [e.get("rpc") for e in lines_with(json_lines, rid)]
