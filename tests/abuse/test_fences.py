"""The fences of the edge, case by case, against the real stack: API-key scopes, address
allowlists, trusted proxies, CORS and WebSocket origins, and the checks made when a key is
created. Every refusal is a 4xx with its stable code (and `details.reason` where the code
is shared), and leaves the engine's state hash and the owner's keys as they were; each case
is filed as pass or fail under "fences" in the abuse report, its answers under the suite
"fences".

The gateway here trusts one proxy network (10.0.0.0/8) that the test client (127.0.0.1) is
not in, so it reads X-Forwarded-For from proxies and a client's own header is the forgery
an attacker would try; it grants CORS to one origin, so a foreign one is the attack.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway_svc.addresses import parse_networks
from gateway_svc.errors import ApiError
from gateway_svc.fences import Scope, admit, scope_of
from tests.abuse.rest import funded_user, judged, state_hash
from tests.abuse.tally import TALLY
from tests.gateway.conftest import Stack
from tests.gateway.signing import signed_headers
from tradekit.backpack import INSTRUCTIONS

SUITE = "fences"
ALLOWED_ORIGIN = "https://app.example.com"
FOREIGN_ORIGIN = "https://evil.example.net"
OUTSIDE = "203.0.113.0/24"  # where the fenced key may be used; the test client is not there
ORDER = {"symbol": "TATA_INR", "side": "Bid", "price": "1", "quantity": "1"}
Headers = dict[str, str]


@pytest.fixture
async def stack(stack_factory: Callable[..., Awaitable[Stack]]) -> Stack:
    return await stack_factory(
        cors_origins=(ALLOWED_ORIGIN,), trusted_proxies=parse_networks(["10.0.0.0/8"])
    )


@dataclass
class Owner:
    """A funded user and her keys: one per fence."""

    stack: Stack
    auth: Headers
    read_only: str  # secrets
    trade: str  # read and trade, the default
    fenced: str  # the default scopes, usable from OUTSIDE only
    local: str  # the default scopes, usable from 127.0.0.0/8 only

    async def keys(self) -> list[Any]:
        response = await self.stack.client.get("/api/v1/auth/apikeys", headers=self.auth)
        assert response.status == 200
        listed: list[Any] = await response.json()
        return listed


async def new_key(stack: Stack, auth: Headers, **fences: Any) -> str:
    response = await stack.client.post("/api/v1/auth/apikeys", json=fences, headers=auth)
    assert response.status == 201, await response.text()
    secret: str = (await response.json())["secret"]
    return secret


@pytest.fixture
async def owner(stack: Stack) -> Owner:
    auth = await funded_user(stack, "fenced@example.test")
    return Owner(
        stack,
        auth,
        read_only=await new_key(stack, auth, permissions=["read"]),
        trade=await new_key(stack, auth),
        fenced=await new_key(stack, auth, ipAllowlist=[OUTSIDE]),
        local=await new_key(stack, auth, ipAllowlist=["127.0.0.0/8"]),
    )


@asynccontextmanager
async def unchanged(owner: Owner) -> AsyncIterator[None]:
    """The engine's state and the owner's keys are the same after the block."""
    hash_before, keys_before = await state_hash(owner.stack), await owner.keys()
    yield
    assert await state_hash(owner.stack) == hash_before, "the engine's state changed"
    assert await owner.keys() == keys_before, "the owner's keys changed"


async def refused(
    stack: Stack, method: str, path: str, status: int, code: str, reason: str = "", **kw: Any
) -> None:
    """The request is answered `status` with `code` (and `reason`), and changes nothing."""
    answered, body = await judged(SUITE, stack, lambda: stack.client.request(method, path, **kw))
    assert (answered, body["code"]) == (status, code), body
    if reason:
        assert body["error"]["details"]["reason"] == reason, body


def signed(secret: str, instruction: str, params: Any = None, **headers: str) -> Headers:
    return {**signed_headers(secret, instruction, params), **headers}


# --- scopes ---

MISSING = (403, "FORBIDDEN", "MISSING_PERMISSION")
NOT_HERE = (403, "FORBIDDEN", "IP_NOT_ALLOWED")


async def read_only_key_places_an_order(o: Owner) -> None:
    async with unchanged(o):
        headers = signed(o.read_only, "orderExecute", ORDER)
        await refused(o.stack, "POST", "/api/v1/order", *MISSING, json=ORDER, headers=headers)


async def read_only_key_cancels_all(o: Owner) -> None:
    body = {"symbol": "TATA_INR"}
    async with unchanged(o):
        headers = signed(o.read_only, "orderCancelAll", body)
        await refused(o.stack, "DELETE", "/api/v1/orders", *MISSING, json=body, headers=headers)


def scope_table(app: web.Application) -> dict[tuple[str, str], Scope | None]:
    """(method, path) -> the scope each route of the gateway needs of an API key."""
    return {
        (route.method, route.resource.canonical): scope_of(route.handler)
        for route in app.router.routes()
        if route.resource is not None and route.method not in ("HEAD", "OPTIONS")
    }


async def trade_key_requests_a_withdrawal(o: Owner) -> None:
    """By the scope table: a key with read and trade (the default) is admitted to every
    read and trade route and to no withdraw route; any withdraw route there is (signed
    the Backpack way) refuses it for real, before the engine hears of it."""
    table = scope_table(o.stack.client.app)
    assert {Scope.READ, Scope.TRADE} <= set(table.values())
    granted = ("read", "trade")
    for route, scope in table.items():
        if scope is not None and scope is not Scope.WITHDRAW:
            admit(scope, granted, (), "127.0.0.1")  # passes
            continue
        with pytest.raises(ApiError) as refusal:  # a withdraw route, or one for no key
            admit(scope, granted, (), "127.0.0.1")
        assert refusal.value.status == 403, route
    with pytest.raises(ApiError) as refusal:
        admit(Scope.WITHDRAW, granted, (), "127.0.0.1")
    assert refusal.value.details == {"reason": "MISSING_PERMISSION", "required": "withdraw"}
    withdraw_routes = [r for r, s in table.items() if s is Scope.WITHDRAW and r in INSTRUCTIONS]
    body = {"symbol": "USDT", "quantity": "1", "address": "0x" + "ab" * 20,
            "blockchain": "Ethereum"}  # fmt: skip
    async with unchanged(o):
        for method, path in withdraw_routes:
            params: dict[str, Any] = {} if method == "GET" else body
            sent: dict[str, Any] = {"params" if method == "GET" else "json": params}
            sent["headers"] = signed(o.trade, INSTRUCTIONS[(method, path)], params)
            await refused(o.stack, method, path, *MISSING, **sent)


# --- addresses ---


async def outside_the_allowlist(o: Owner) -> None:
    async with unchanged(o):
        headers = signed(o.fenced, "balanceQuery")
        await refused(o.stack, "GET", "/api/v1/capital", *NOT_HERE, headers=headers)
        headers = signed(o.fenced, "orderExecute", ORDER)
        await refused(o.stack, "POST", "/api/v1/order", *NOT_HERE, json=ORDER, headers=headers)


async def spoofed_forwarded_for(o: Owner) -> None:
    """The client says it is forwarding for an allowlisted address; its peer is no trusted
    proxy, so the header is not read: refused as itself, and the key allowlisting its real
    address still works with the same header."""
    for spoof in ("203.0.113.9", "10.0.0.1", "203.0.113.9, 10.0.0.1"):
        forged = {"X-Forwarded-For": spoof}
        async with unchanged(o):
            headers = signed(o.fenced, "orderExecute", ORDER, **forged)
            await refused(o.stack, "POST", "/api/v1/order", *NOT_HERE, json=ORDER, headers=headers)
        real = signed(o.local, "balanceQuery", **forged)
        answer = await o.stack.client.get("/api/v1/capital", headers=real)
        assert answer.status == 200, (spoof, await answer.text())


# --- origins ---


def upgrade_headers(origin: str) -> Headers:
    key = base64.b64encode(os.urandom(16)).decode()
    return {"Origin": origin, "Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}  # fmt: skip


async def websocket_from_a_foreign_origin(o: Owner) -> None:
    forbidden = (403, "FORBIDDEN", "ORIGIN_NOT_ALLOWED")
    async with unchanged(o):
        for path in ("/ws", "/"):
            await refused(o.stack, "GET", path, *forbidden, headers=upgrade_headers(FOREIGN_ORIGIN))
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as handshake:
                await session.ws_connect(f"{o.stack.url}/ws", headers={"Origin": FOREIGN_ORIGIN})
            assert handshake.value.status == 403
            allowed = {"Origin": ALLOWED_ORIGIN}
            async with session.ws_connect(f"{o.stack.url}/ws", headers=allowed) as ws:
                assert not ws.closed


PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type, x-api-key, x-signature, x-timestamp",
}


async def preflight_from_a_foreign_origin(o: Owner) -> None:
    foreign = {"Origin": FOREIGN_ORIGIN, **PREFLIGHT}
    async with unchanged(o):
        for path in ("/api/v1/order", "/api/v1/orders", "/api/v1/auth/apikeys"):
            await refused(o.stack, "OPTIONS", path, 403, "FORBIDDEN", headers=foreign)
            answer = await o.stack.client.options(path, headers=foreign)
            granted = [h for h in answer.headers if h.lower().startswith("access-control-")]
            assert granted == [], (path, granted)
        # A plain read from the foreign origin's page: answered, but granted nothing, so the
        # browser keeps it from the page.
        answer = await o.stack.client.get("/api/v1/markets", headers={"Origin": FOREIGN_ORIGIN})
        assert answer.status == 200
        assert "Access-Control-Allow-Origin" not in answer.headers
        allowed = await o.stack.client.options(
            "/api/v1/order", headers={"Origin": ALLOWED_ORIGIN, **PREFLIGHT}
        )
        assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


# --- key creation ---


async def create(o: Owner, fences: dict[str, Any], code: str) -> None:
    async with unchanged(o):
        path = "/api/v1/auth/apikeys"
        await refused(o.stack, "POST", path, 400, code, json=fences, headers=o.auth)


async def unknown_scope_at_creation(o: Owner) -> None:
    for permissions in (["read", "admin"], ["READ"], ["withdraw", ""], ["trade "]):
        await create(o, {"permissions": permissions}, "INVALID_PERMISSION")
    wrong_types: list[Any] = ["read", [1], {"read": True}, [None]]
    for wrong in wrong_types:
        await create(o, {"permissions": wrong}, "INVALID_CLIENT_REQUEST")


async def malformed_cidr_at_creation(o: Owner) -> None:
    for entry in ("203.0.113.0/33", "203.0.113.7/24", "localhost", "203.0.113", "::1/129",
                  "10.0.0.0/8/8", ""):  # fmt: skip
        await create(o, {"ipAllowlist": ["10.0.0.0/8", entry]}, "INVALID_IP_ALLOWLIST")
    for allowlist in ("10.0.0.0/8", [7], [["10.0.0.0/8"]]):
        await create(o, {"ipAllowlist": allowlist}, "INVALID_CLIENT_REQUEST")


CASES: dict[str, Callable[[Owner], Awaitable[None]]] = {
    "scope: read-only key places an order": read_only_key_places_an_order,
    "scope: read-only key cancels all orders": read_only_key_cancels_all,
    "scope: trade key requests a withdrawal (scope table)": trade_key_requests_a_withdrawal,
    "address: signed request from outside the allowlist": outside_the_allowlist,
    "address: spoofed X-Forwarded-For from an untrusted peer": spoofed_forwarded_for,
    "origin: WebSocket upgrade from a foreign Origin": websocket_from_a_foreign_origin,
    "origin: CORS preflight from a foreign origin": preflight_from_a_foreign_origin,
    "key creation: unknown scope": unknown_scope_at_creation,
    "key creation: malformed CIDR": malformed_cidr_at_creation,
}


@pytest.mark.parametrize("name", list(CASES))
async def test_fence(owner: Owner, name: str) -> None:
    with TALLY.case("fences", name):
        await CASES[name](owner)
