"""CORS preflights, WebSocket origins and the security headers, against the real stack."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from gateway_svc.headers import HEADERS
from tests.gateway.conftest import Stack

ALLOWED = "https://app.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type, x-api-key, x-signature, x-timestamp",
}


@pytest.fixture
async def cors_stack(stack_factory: Any) -> Stack:
    made: Stack = await stack_factory(cors_origins=(ALLOWED,))
    return made


async def test_a_preflight_from_an_allowed_origin_is_granted(cors_stack: Stack) -> None:
    response = await cors_stack.client.options(
        "/api/v1/order", headers={"Origin": ALLOWED, **PREFLIGHT}
    )
    assert response.status == 200
    h = response.headers
    assert h["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in h["Access-Control-Allow-Methods"]
    allowed = {x.strip().lower() for x in h["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "x-api-key", "x-signature", "x-timestamp"} <= allowed
    assert h["Access-Control-Max-Age"] == "600"
    assert "Access-Control-Allow-Credentials" not in h
    answer = await cors_stack.client.get("/api/v1/markets", headers={"Origin": ALLOWED})
    assert answer.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "X-RateLimit-Remaining" in answer.headers["Access-Control-Expose-Headers"]


async def test_another_origin_is_granted_nothing(cors_stack: Stack) -> None:
    evil = "https://evil.example.net"
    response = await cors_stack.client.options(
        "/api/v1/order", headers={"Origin": evil, **PREFLIGHT}
    )
    assert (response.status, (await response.json())["code"]) == (403, "FORBIDDEN")
    assert "Access-Control-Allow-Origin" not in response.headers
    answer = await cors_stack.client.get("/api/v1/markets", headers={"Origin": evil})
    assert "Access-Control-Allow-Origin" not in answer.headers


async def test_websocket_from_a_forbidden_origin_is_refused(cors_stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/ws", "/"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(
                    f"{cors_stack.url}{path}", headers={"Origin": "https://evil.example.net"}
                )
            assert refused.value.status == 403
        # The allowed origin, the gateway's own, and a client sending none all connect.
        for origin in (ALLOWED, cors_stack.url, None):
            headers = {"Origin": origin} if origin else {}
            async with session.ws_connect(f"{cors_stack.url}/ws", headers=headers) as ws:
                assert not ws.closed


async def test_every_answer_carries_the_security_headers(stack: Stack) -> None:
    for path in ("/api/v1/markets", "/api/v1/nothing-here", "/health", "/api/v1/capital"):
        response = await stack.client.get(path)
        for name, value in HEADERS.items():
            assert response.headers.get(name) == value, (path, name)
    assert "max-age=" in HEADERS["Strict-Transport-Security"]
    assert "frame-ancestors 'none'" in HEADERS["Content-Security-Policy"]
