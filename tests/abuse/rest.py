"""Sending hostile requests to a live stack and judging the answers.

`judged` is the whole property of one request: no 5xx; every 4xx is the JSON error body
with a stable code from hostile.CLIENT_ERRORS; and a refused request leaves the engine's
state hash exactly as it was (an accepted one may change it, and is only counted).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import ClientResponse

from exchange.engine.v1 import engine_pb2 as epb
from tests.abuse.hostile import CLIENT_ERRORS
from tests.abuse.tally import TALLY
from tests.gateway.conftest import Stack
from tests.gateway.test_rest import fund, signup


async def state_hash(stack: Stack) -> str:
    reply = await stack.engine.stub.GetStateHash(epb.GetStateHashRequest())
    return reply.state_hash


async def funded_user(stack: Stack, email: str) -> dict[str, str]:
    """A user holding some of every asset the tests trade, so valid orders can pass."""
    _, auth = await signup(stack, email)
    for asset, amount in (("INR", "100000"), ("TATA", "1000"), ("USDT", "100000"), ("BTC", "2")):
        await fund(stack, auth, asset, amount)
    return auth


def check_error(status: int, body: Any) -> str:
    """The stable code of an error body; fails unless it is one of the documented set."""
    assert isinstance(body, dict), body
    code = body.get("code")
    assert code in CLIENT_ERRORS, (status, body)
    assert body["error"]["code"] == code, body
    assert isinstance(body["message"], str), body
    return str(code)


async def judged(
    suite: str, stack: Stack, send: Callable[[], Awaitable[ClientResponse]]
) -> tuple[int, Any]:
    """Sends one request and checks the answer (see the module docstring)."""
    before = await state_hash(stack)
    response = await send()
    status = response.status
    text = await response.text()
    body = orjson.loads(text) if response.content_type == "application/json" else None
    code = str(body.get("code", "")) if isinstance(body, dict) and status >= 400 else ""
    TALLY.answer(suite, status, code)  # before the checks, so a 5xx is counted too
    assert status < 500, (status, text)
    if status >= 400:
        check_error(status, body)
        after = await state_hash(stack)
        TALLY.state(suite, changed=before != after)
        assert before == after, f"refused ({status} {code}) but the engine state changed"
    return status, body
