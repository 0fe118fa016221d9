"""API-key scopes, address allowlists and trusted proxies, against the real stack."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from gateway_svc.addresses import client_address, parse_networks
from gateway_svc.errors import ApiError
from gateway_svc.fences import Scope, admit
from gateway_svc.lockout import MAX_PER_ACCOUNT
from tests.gateway.conftest import Stack
from tests.gateway.signing import signed_headers
from tests.gateway.test_rest import fund, signup

ORDER = {"symbol": "TATA_INR", "side": "Bid", "price": "1", "quantity": "1"}


async def new_key(stack: Stack, auth: dict[str, str], **fences: Any) -> dict[str, Any]:
    response = await stack.client.post("/api/v1/auth/apikeys", json=fences, headers=auth)
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def refusal(response: aiohttp.ClientResponse) -> tuple[int, str, str]:
    body = await response.json()
    return response.status, body["code"], body["error"]["details"].get("reason", "")


async def balances(stack: Stack, secret: str, **headers: str) -> aiohttp.ClientResponse:
    signed = signed_headers(secret, "balanceQuery")
    return await stack.client.get("/api/v1/capital", headers={**signed, **headers})


async def place(stack: Stack, secret: str) -> aiohttp.ClientResponse:
    signed = signed_headers(secret, "orderExecute", ORDER)
    return await stack.client.post("/api/v1/order", json=ORDER, headers=signed)


async def test_keys_get_read_and_trade_by_default_and_never_withdraw(stack: Stack) -> None:
    _, auth = await signup(stack, "default@example.com")
    created = await new_key(stack, auth, label="bot")
    assert (created["permissions"], created["ipAllowlist"]) == (["read", "trade"], [])
    listed = await (await stack.client.get("/api/v1/auth/apikeys", headers=auth)).json()
    assert [k["permissions"] for k in listed] == [["read", "trade"]]
    wide = await new_key(stack, auth, permissions=["withdraw", "read", "read"])
    assert wide["permissions"] == ["read", "withdraw"]


async def test_a_read_only_key_cannot_trade_and_the_engine_never_hears_of_it(
    stack: Stack,
) -> None:
    _, auth = await signup(stack, "reader@example.com")
    await fund(stack, auth, "INR", "100")
    secret = (await new_key(stack, auth, permissions=["read"]))["secret"]
    assert (await balances(stack, secret)).status == 200
    seq = stack.engine.runtime.engine.seq
    assert await refusal(await place(stack, secret)) == (403, "FORBIDDEN", "MISSING_PERMISSION")
    cancel = {"symbol": "TATA_INR"}
    signed = signed_headers(secret, "orderCancelAll", cancel)
    response = await stack.client.delete("/api/v1/orders", json=cancel, headers=signed)
    assert await refusal(response) == (403, "FORBIDDEN", "MISSING_PERMISSION")
    assert stack.engine.runtime.engine.seq == seq


async def test_a_trade_only_key_cannot_read_balances(stack: Stack) -> None:
    _, auth = await signup(stack, "trader@example.com")
    await fund(stack, auth, "INR", "100")
    secret = (await new_key(stack, auth, permissions=["trade"]))["secret"]
    assert (await place(stack, secret)).status == 200
    assert await refusal(await balances(stack, secret)) == (403, "FORBIDDEN", "MISSING_PERMISSION")


def test_a_trade_key_cannot_withdraw() -> None:
    # The withdraw routes carry Scope.WITHDRAW; this is the check they share with the rest.
    with pytest.raises(ApiError) as refused:
        admit(Scope.WITHDRAW, ("read", "trade"), (), "127.0.0.1")
    assert (refused.value.status, refused.value.details["required"]) == (403, "withdraw")
    admit(Scope.WITHDRAW, ("withdraw",), (), "127.0.0.1")
    with pytest.raises(ApiError):  # an untagged route grants an API key nothing
        admit(None, ("read", "trade", "withdraw"), (), "127.0.0.1")


@pytest.mark.parametrize(
    ("fences", "code"),
    [
        ({"permissions": ["read", "admin"]}, "INVALID_PERMISSION"),
        ({"permissions": "read"}, "INVALID_CLIENT_REQUEST"),
        ({"ipAllowlist": ["203.0.113.0/33"]}, "INVALID_IP_ALLOWLIST"),
        ({"ipAllowlist": ["203.0.113.7/24"]}, "INVALID_IP_ALLOWLIST"),  # host bits set
        ({"ipAllowlist": ["localhost"]}, "INVALID_IP_ALLOWLIST"),
        ({"ipAllowlist": [7]}, "INVALID_CLIENT_REQUEST"),
    ],
)
async def test_bad_scopes_and_allowlists_are_refused_and_make_no_key(
    stack: Stack, fences: dict[str, Any], code: str
) -> None:
    _, auth = await signup(stack, "picky@example.com")
    response = await stack.client.post("/api/v1/auth/apikeys", json=fences, headers=auth)
    assert (response.status, (await response.json())["code"]) == (400, code)
    assert await (await stack.client.get("/api/v1/auth/apikeys", headers=auth)).json() == []


async def test_an_allowlisted_key_is_refused_elsewhere_even_with_a_forged_header(
    stack: Stack,
) -> None:
    _, auth = await signup(stack, "fenced@example.com")
    far = (await new_key(stack, auth, ipAllowlist=["203.0.113.0/24", "2001:db8::/32"]))["secret"]
    near = (await new_key(stack, auth, ipAllowlist=["127.0.0.0/8"]))["secret"]
    assert (await balances(stack, near)).status == 200
    assert await refusal(await balances(stack, far)) == (403, "FORBIDDEN", "IP_NOT_ALLOWED")
    # No proxy is trusted: a client saying it is someone else changes nothing.
    forged = await balances(stack, far, **{"X-Forwarded-For": "203.0.113.9"})
    assert await refusal(forged) == (403, "FORBIDDEN", "IP_NOT_ALLOWED")


async def test_behind_a_trusted_proxy_the_forwarded_client_counts(stack_factory: Any) -> None:
    stack: Stack = await stack_factory(trusted_proxies=parse_networks(["127.0.0.1"]))
    _, auth = await signup(stack, "proxied@example.com")
    far = (await new_key(stack, auth, ipAllowlist=["203.0.113.0/24", "2001:db8::/32"]))["secret"]
    for client in ("203.0.113.9", "2001:db8::7", "spoofed, 203.0.113.9"):
        response = await balances(stack, far, **{"X-Forwarded-For": client})
        assert response.status == 200, client
    # The proxy appended what it saw last; what the client wrote before it is not believed.
    forged = await balances(stack, far, **{"X-Forwarded-For": "203.0.113.9, 198.51.100.1"})
    assert await refusal(forged) == (403, "FORBIDDEN", "IP_NOT_ALLOWED")
    assert await refusal(await balances(stack, far)) == (403, "FORBIDDEN", "IP_NOT_ALLOWED")


def test_the_client_address_is_the_first_untrusted_hop_from_the_right() -> None:
    proxies = parse_networks(["10.0.0.0/8", "fd00::/8"])
    assert client_address("10.1.1.1", ["1.2.3.4, 5.6.7.8, 10.2.2.2"], proxies) == "5.6.7.8"
    assert client_address("10.1.1.1", ["1.2.3.4", "5.6.7.8"], proxies) == "5.6.7.8"
    assert client_address("10.1.1.1", ["10.3.3.3"], proxies) == "10.3.3.3"  # all proxies
    assert client_address("10.1.1.1", ["1.2.3.4, junk"], proxies) == "10.1.1.1"
    assert client_address("192.0.2.1", ["1.2.3.4"], proxies) == "192.0.2.1"  # untrusted peer
    assert client_address("fd00::1", ["2001:db8::5"], proxies) == "2001:db8::5"
    assert client_address("::ffff:10.1.1.1", ["1.2.3.4"], proxies) == "1.2.3.4"
    assert client_address("10.1.1.1", [], proxies) == "10.1.1.1"


async def test_a_signed_private_subscription_needs_the_read_scope(stack: Stack) -> None:
    _, auth = await signup(stack, "streamer@example.com")
    trade_only = (await new_key(stack, auth, permissions=["trade"]))["secret"]
    fenced = (await new_key(stack, auth, ipAllowlist=["203.0.113.0/24"]))["secret"]
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{stack.url}/ws") as ws:
        for secret in (trade_only, fenced):
            h = signed_headers(secret, "subscribe")
            signature = [h["X-API-Key"], h["X-Signature"], h["X-Timestamp"], h["X-Window"]]
            await ws.send_json(
                {
                    "id": 1,
                    "method": "SUBSCRIBE",
                    "params": ["account.orderUpdate"],
                    "signature": signature,
                }
            )
            frame = await ws.receive_json(timeout=30)
            assert frame["error"]["code"] == 4003, frame
            assert frame["error"]["name"] == "FORBIDDEN", frame


async def test_failed_log_ins_lock_the_account_out(stack: Stack) -> None:
    await signup(stack, "brute@example.com")
    wrong = {"email": "brute@example.com", "password": "not the password"}
    statuses = [
        (await stack.client.post("/api/v1/auth/login", json=wrong)).status
        for _ in range(MAX_PER_ACCOUNT + 1)
    ]
    assert statuses == [401] * MAX_PER_ACCOUNT + [429]
    right = {"email": "BRUTE@example.com", "password": "a good password"}
    locked = await stack.client.post("/api/v1/auth/login", json=right)
    assert await refusal(locked) == (429, "TOO_MANY_REQUESTS", "LOGIN_LOCKED")
    assert int(locked.headers["Retry-After"]) > 0
