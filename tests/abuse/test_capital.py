"""Bad withdrawal requests against the real stack: each is refused with a 4xx, a stable code
and the engine's reason, locks nothing and leaves the engine's state hash as it was
(tests.abuse.rest). Above what is available (the fee on top), below the network's minimum,
above its maximum and its daily limit, malformed addresses, unknown and disabled networks,
zero, negative, over-precise and non-numeric quantities, a clientId reused with other
facts, another user's id; and a bad clientId or memo, in both dialects' paths."""

from __future__ import annotations

from typing import Any

import pytest

from tests.abuse.rest import funded_user, judged, state_hash
from tests.gateway.conftest import Stack

OUT = "0x" + "0b" * 20
BTC_OUT = "1" + "A" * 33
# 10 USDT on Ethereum: fee 1, minimum 5, maximum 100000, daily limit 50000 per user.
USDT = {"symbol": "USDT", "blockchain": "Ethereum", "quantity": "10", "address": OUT}
GONE = object()

# (what is wrong, the body's changes, HTTP status, code, the engine's reason or None)
CASES: list[tuple[str, dict[str, Any], int, str, str | None]] = [
    ("more than available with the fee", {"symbol": "BTC", "blockchain": "Bitcoin",
     "quantity": "2", "address": BTC_OUT}, 400, "INSUFFICIENT_FUNDS", "INSUFFICIENT_FUNDS"),
    ("below the minimum", {"quantity": "4.999999"}, 400, "INVALID_QUANTITY",
     "BELOW_MIN_WITHDRAWAL"),
    ("above the maximum", {"quantity": "100000.000001"}, 400, "INVALID_QUANTITY",
     "ABOVE_MAX_WITHDRAWAL"),
    ("above the daily limit", {"quantity": "50001"}, 400, "INVALID_QUANTITY",
     "WITHDRAWAL_LIMIT"),
    ("a short address", {"address": "0x1234"}, 400, "INVALID_CLIENT_REQUEST",
     "INVALID_ADDRESS"),
    ("a base58 address on Ethereum", {"address": BTC_OUT}, 400, "INVALID_CLIENT_REQUEST",
     "INVALID_ADDRESS"),
    ("an address with a space", {"address": OUT[:-1] + " "}, 400, "INVALID_CLIENT_REQUEST",
     "INVALID_ADDRESS"),
    ("an empty address", {"address": ""}, 400, "INVALID_CLIENT_REQUEST", None),
    ("no address", {"address": GONE}, 400, "INVALID_CLIENT_REQUEST", None),
    ("an address not a string", {"address": 12}, 400, "INVALID_CLIENT_REQUEST", None),
    ("an address too long", {"address": "0x" + "a" * 200}, 400, "INVALID_CLIENT_REQUEST",
     None),
    ("a disabled network", {"symbol": "USDC"}, 400, "INVALID_CLIENT_REQUEST",
     "NETWORK_DISABLED"),
    ("an unknown network", {"blockchain": "Tron"}, 400, "INVALID_CLIENT_REQUEST",
     "UNKNOWN_NETWORK"),
    ("an asset not on the network", {"symbol": "INR"}, 400, "INVALID_CLIENT_REQUEST",
     "UNKNOWN_NETWORK"),
    ("an unknown asset", {"symbol": "NOPE"}, 400, "INVALID_ASSET", "UNKNOWN_ASSET"),
    ("no network", {"blockchain": GONE}, 400, "INVALID_CLIENT_REQUEST", None),
    ("a zero quantity", {"quantity": "0"}, 400, "INVALID_QUANTITY", None),
    ("a negative quantity", {"quantity": "-10"}, 400, "INVALID_QUANTITY", None),
    ("a negative JSON number", {"quantity": -10}, 400, "INVALID_QUANTITY", None),
    ("more decimals than the asset", {"quantity": "10.0000001"}, 400, "INVALID_QUANTITY",
     None),
    ("an exponent", {"quantity": "1e3"}, 400, "INVALID_QUANTITY", None),
    ("NaN", {"quantity": "NaN"}, 400, "INVALID_QUANTITY", None),
    ("Infinity", {"quantity": "Infinity"}, 400, "INVALID_QUANTITY", None),
    ("a huge quantity", {"quantity": "1" + "0" * 60}, 400, "INVALID_QUANTITY", None),
    ("no quantity", {"quantity": GONE}, 400, "INVALID_CLIENT_REQUEST", None),
    ("a quantity not a number", {"quantity": {"n": 1}}, 400, "INVALID_CLIENT_REQUEST", None),
    ("a clientId not a number", {"clientId": "memo"}, 400, "INVALID_CLIENT_REQUEST",
     "INVALID_CLIENT_ID"),
    ("a negative clientId", {"clientId": -1}, 400, "INVALID_CLIENT_REQUEST",
     "INVALID_CLIENT_ID"),
    ("a fractional clientId", {"clientId": 7.5}, 400, "INVALID_CLIENT_REQUEST",
     "INVALID_CLIENT_ID"),
    ("a clientId above 32 bits", {"clientId": 2**32}, 400, "INVALID_CLIENT_REQUEST",
     "INVALID_CLIENT_ID"),
    ("a clientId used with other facts", {"clientId": 9, "quantity": "11"}, 409,
     "DUPLICATE_CLIENT_ID", "DUPLICATE_CLIENT_ID"),
    ("a memo too long", {"memo": "m" * 65}, 400, "INVALID_CLIENT_REQUEST", None),
    ("a memo with a control character", {"memo": "a\nb"}, 400, "INVALID_CLIENT_REQUEST",
     None),
    ("a memo not ASCII", {"memo": "caf\u00e9"}, 400, "INVALID_CLIENT_REQUEST", None),
    ("a memo not a string", {"memo": 5}, 400, "INVALID_CLIENT_REQUEST", None),
    ("a clientId used with another memo", {"clientId": 9, "memo": "tag"}, 409,
     "DUPLICATE_CLIENT_ID", "DUPLICATE_CLIENT_ID"),
    ("another user's id", {"userId": 999}, 403, "FORBIDDEN", None),
]  # fmt: skip


def _body(changes: dict[str, Any]) -> dict[str, Any]:
    body = {**USDT, **changes}
    return {k: v for k, v in body.items() if v is not GONE}


async def _balances(stack: Stack, auth: dict[str, str]) -> Any:
    return await (await stack.client.get("/api/v1/capital", headers=auth)).json()


@pytest.mark.parametrize("path", ["/wapi/v1/capital/withdrawals", "/api/v1/capital/withdrawals"])
async def test_bad_withdrawals_are_refused_with_their_code_and_lock_nothing(
    stack: Stack, path: str
) -> None:
    alice = await funded_user(stack, "alice@example.test")
    first = await stack.client.post(path, json={**USDT, "clientId": 9}, headers=alice)
    assert first.status == 200, await first.text()
    held = await _balances(stack, alice)
    assert held["USDT"]["locked"] == "11.000000"
    for what, changes, status, code, reason in CASES:
        body = _body(changes)
        got, answer = await judged(
            "capital",
            stack,
            lambda body=body: stack.client.post(path, json=body, headers=alice),  # type: ignore[misc]
        )
        assert (got, answer["code"]) == (status, code), (what, answer)
        if reason is not None:
            assert answer["error"]["details"]["reason"] == reason, (what, answer)
    assert await _balances(stack, alice) == held  # nothing more locked, nothing released
    listed = await (await stack.client.get(path, headers=alice)).json()
    assert len(listed) == 1


async def test_a_body_that_is_not_an_object_is_refused(stack: Stack) -> None:
    alice = await funded_user(stack, "alice@example.test")
    before = await state_hash(stack)
    for body in ([USDT], "10", None):
        response = await stack.client.post("/wapi/v1/capital/withdrawals", json=body, headers=alice)
        assert response.status == 400
    response = await stack.client.post(
        "/wapi/v1/capital/withdrawals", data=b"{not json", headers=alice
    )
    assert response.status == 400
    assert await state_hash(stack) == before


async def test_bad_history_and_address_queries_are_refused(stack: Stack) -> None:
    alice = await funded_user(stack, "alice@example.test")
    for path, query, code, reason in [
        ("/wapi/v1/capital/withdrawals", {"limit": "1001"}, "INVALID_CLIENT_REQUEST", None),
        ("/wapi/v1/capital/deposits", {"from": "-1"}, "INVALID_CLIENT_REQUEST", None),
        ("/wapi/v1/capital/deposits", {"offset": "x"}, "INVALID_CLIENT_REQUEST", None),
        ("/wapi/v1/capital/deposit/address", {}, "INVALID_CLIENT_REQUEST", None),
        ("/wapi/v1/capital/deposit/address", {"blockchain": "Tron"}, "INVALID_CLIENT_REQUEST",
         "UNKNOWN_NETWORK"),
        ("/wapi/v1/capital/deposit/address", {"blockchain": "x" * 33},
         "INVALID_CLIENT_REQUEST", None),
        ("/api/v1/account/limits/withdrawal", {"symbol": "INR"}, "INVALID_CLIENT_REQUEST",
         "UNKNOWN_NETWORK"),
    ]:  # fmt: skip
        got, answer = await judged(
            "capital",
            stack,
            lambda path=path, query=query: stack.client.get(  # type: ignore[misc]
                path, params=query, headers=alice
            ),
        )
        assert (got, answer["code"]) == (400, code), (path, query, answer)
        if reason is not None:
            assert answer["error"]["details"]["reason"] == reason, (path, answer)
