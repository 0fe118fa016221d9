"""A withdrawal's memo (a chain's memo or destination tag) through the gateway: stored by
the engine with the withdrawal, returned by both dialects, part of a clientId retry's facts,
and a bad one refused with its field before anything is locked."""

from __future__ import annotations

from tests.gateway.conftest import Stack
from tests.gateway.test_ccxt_capital import OUT, credit
from tests.gateway.test_rest import signup


async def test_a_memo_is_stored_and_returned_and_a_bad_one_locks_nothing(stack: Stack) -> None:
    _, auth = await signup(stack, "memo@withdrawals.test")
    got = await stack.client.get(
        "/wapi/v1/capital/deposit/address?blockchain=Ethereum&symbol=USDT", headers=auth
    )
    await credit(stack, (await got.json())["address"], "100", "memofunds", 3)
    body = {"symbol": "USDT", "blockchain": "Ethereum", "quantity": "20", "address": OUT,
            "clientId": 5, "memo": "dest tag 1234"}  # fmt: skip

    async def locked() -> str:
        balances = await (await stack.client.get("/api/v1/capital", headers=auth)).json()
        return str(balances["USDT"]["locked"])

    for bad in ("x" * 65, "tab\there", 1234):
        response = await stack.client.post(
            "/wapi/v1/capital/withdrawals", json={**body, "memo": bad}, headers=auth
        )
        answer = await response.json()
        assert (response.status, answer["code"]) == (400, "INVALID_CLIENT_REQUEST"), answer
        assert answer["error"]["details"]["field"] == "memo"
    assert await locked() == "0.000000"

    made = await stack.client.post("/wapi/v1/capital/withdrawals", json=body, headers=auth)
    assert made.status == 200, await made.text()
    first = await made.json()
    assert (first["memo"], first["clientId"]) == ("dest tag 1234", 5)
    again = await stack.client.post("/api/v1/capital/withdrawals", json=body, headers=auth)
    assert (await again.json())["id"] == first["id"]
    other = await stack.client.post(
        "/wapi/v1/capital/withdrawals", json={**body, "memo": "another"}, headers=auth
    )
    assert other.status == 409
    assert (await other.json())["error"]["details"]["reason"] == "DUPLICATE_CLIENT_ID"
    plain = await stack.client.post(
        "/wapi/v1/capital/withdrawals", json={**body, "clientId": 6, "memo": ""}, headers=auth
    )
    assert (await plain.json())["memo"] is None
    assert await locked() == "42.000000"  # two withdrawals of 20, each with its fee of 1

    for path in ("/wapi/v1/capital/withdrawals", "/api/v1/capital/withdrawals"):
        listed = await (await stack.client.get(path, headers=auth)).json()
        assert [(w["clientId"], w["memo"]) for w in listed] == [(6, None), (5, "dest tag 1234")]
