"""Hostile signatures: every request whose ED25519 signature, key, timestamp or window is
wrong, stale, from the future or replayed is refused with 401 and a stable code, and
changes nothing in the engine."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.abuse.conftest import ABUSE
from tests.abuse.rest import funded_user, judged
from tests.gateway.conftest import Stack
from tests.gateway.signing import signed_headers

AUTH_ERRORS = {"UNAUTHORIZED", "INVALID_SIGNATURE"}
WINDOW = 5000
ORDER = {"symbol": "TATA_INR", "side": "Bid", "orderType": "Limit", "price": "100", "quantity": "1"}
# (method, path, instruction, signed params, JSON body)
REQUESTS: list[tuple[str, str, str, dict[str, Any], Any]] = [
    ("GET", "/api/v1/capital", "balanceQuery", {}, None),
    ("POST", "/api/v1/order", "orderExecute", ORDER, ORDER),
    ("DELETE", "/api/v1/orders", "orderCancelAll", {"symbol": "TATA_INR"}, {"symbol": "TATA_INR"}),
]


@pytest.fixture
async def secret(stack: Stack) -> str:
    """A funded user's API key secret (base64 ED25519 seed)."""
    auth = await funded_user(stack, "signer@example.test")
    response = await stack.client.post("/api/v1/auth/apikeys", json={}, headers=auth)
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return str(body["secret"])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


header_text = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=60)
digits_no_int = st.sampled_from(
    ["\u00b2", "1\u00b2", "\u0661\u0662\u0663", "9" * 5000, "-5", "+5", " 5"]
)
bad_key = (
    header_text
    | st.binary(max_size=64).filter(lambda b: len(b) != 32).map(b64)
    | st.binary(min_size=32, max_size=32).map(b64)
)
bad_signature = header_text | st.binary(max_size=100).map(b64)


@st.composite
def tampering(draw: st.DrawFn) -> dict[str, Any]:
    """What to do to a correctly signed request: 1 to 3 of these, each enough to refuse it."""
    now = int(time.time() * 1000)
    far = st.integers(WINDOW + 1000, 10**12)
    choices = {
        "X-API-Key": bad_key,
        "X-Signature": bad_signature,
        "X-Timestamp": st.one_of(
            far.map(lambda d: str(now - d)),
            far.map(lambda d: str(now + d)),
            digits_no_int,
            header_text,
        ),
        "X-Window": st.sampled_from(["0", "60001", "-1", "5000.0", "1e4"])
        | digits_no_int
        | header_text,
        "drop": st.sampled_from(["X-API-Key", "X-Signature", "X-Timestamp"]),
        "params": st.just({"symbol": "BTC_USDT"}),  # signed for one market, sent for another
    }
    names = draw(st.lists(st.sampled_from(sorted(choices)), unique=True, min_size=1, max_size=3))
    return {name: draw(choices[name]) for name in names}


@ABUSE
@given(request=st.sampled_from(REQUESTS), changes=tampering())
async def test_tampered_signatures_get_401_and_change_nothing(
    stack: Stack,
    secret: str,
    request: tuple[str, str, str, dict[str, Any], Any],
    changes: dict[str, Any],
) -> None:
    method, path, instruction, signed, body = request
    headers = signed_headers(secret, instruction, signed, window_ms=WINDOW)
    for name, value in changes.items():
        if name.startswith("X-") and value != headers[name]:
            headers[name] = value
    headers.pop(changes.get("drop", ""), None)
    if "params" in changes:
        body = {**(body or {}), **changes["params"]} if method != "GET" else None
        path = path if method != "GET" else f"{path}?symbol=BTC_USDT"
    status, answer = await judged(
        "signatures", stack, lambda: stack.client.request(method, path, json=body, headers=headers)
    )
    assert status == 401, (changes, answer)
    assert answer["code"] in AUTH_ERRORS


@ABUSE
@given(request=st.sampled_from(REQUESTS))
async def test_a_replayed_signature_is_refused(
    stack: Stack, secret: str, request: tuple[str, str, str, dict[str, Any], Any]
) -> None:
    method, path, instruction, signed, body = request
    headers = signed_headers(secret, instruction, signed, window_ms=WINDOW)
    first, _ = await judged(
        "signatures", stack, lambda: stack.client.request(method, path, json=body, headers=headers)
    )
    assert first < 400
    again, answer = await judged(
        "signatures", stack, lambda: stack.client.request(method, path, json=body, headers=headers)
    )
    assert (again, answer["code"]) == (401, "INVALID_SIGNATURE")


@pytest.mark.parametrize("header", ["X-Timestamp", "X-Window"])
@pytest.mark.parametrize("value", ["\u00b2", "\u0661\u0662\u0663", "9" * 5000])
async def test_digits_int_cannot_read_are_401_not_500(
    stack: Stack, secret: str, header: str, value: str
) -> None:
    """Regression: "²" passes str.isdigit() and 5000 digits are too many for int(); both
    made the gateway answer 500."""
    headers = {**signed_headers(secret, "balanceQuery", window_ms=WINDOW), header: value}
    status, answer = await judged(
        "signatures", stack, lambda: stack.client.get("/api/v1/capital", headers=headers)
    )
    assert (status, answer["code"]) == (401, "UNAUTHORIZED")
