"""Conditional orders over REST outside ccxt's paths: the spec dialect's order body and the
batch take the same trigger and take-profit / stop-loss fields as Backpack's; a batch
answers a trigger order the engine refuses on its own."""

from __future__ import annotations

from tests.gateway.conftest import Stack
from tests.gateway.test_rest import fund, signup


async def test_the_spec_dialect_and_the_batch_place_trigger_orders(stack: Stack) -> None:
    _, alice = await signup(stack, "stops-alice@example.com")
    _, bob = await signup(stack, "stops-bob@example.com")
    await fund(stack, alice, "TATA", "10")
    await fund(stack, bob, "INR", "10000")
    client = stack.client
    for auth, side in ((alice, "sell"), (bob, "buy")):  # the last price: 100
        body = {"market": "TATA_INR", "side": side, "price": "100", "quantity": "1"}
        traded = await client.post("/api/v1/order", json=body, headers=auth)
        assert traded.status == 200, await traded.text()

    spec = {"market": "TATA_INR", "side": "sell", "price": "89", "quantity": "2"}
    stop = await client.post("/api/v1/order", json={**spec, "triggerPrice": "90"}, headers=alice)
    assert stop.status == 200, await stop.text()
    view = await stop.json()
    assert (view["status"], view["triggerPrice"], view["triggerBy"]) == (
        "TriggerPending",
        "90.00",
        "LastPrice",
    )

    order = {"symbol": "TATA_INR", "side": "Bid", "orderType": "Limit", "quantity": "1"}
    batch = await client.post(
        "/api/v1/orders",
        json=[
            {**order, "orderType": "Market", "triggerPrice": "120"},
            {**order, "price": "95", "takeProfitTriggerPrice": "130", "stopLossTriggerPrice": "80"},
            {**order, "orderType": "Market", "triggerPrice": "100"},  # the last price
        ],
        headers=bob,
    )
    assert batch.status == 200, await batch.text()
    trigger, bracket, now = await batch.json()
    assert (trigger["status"], trigger["triggerPrice"]) == ("TriggerPending", "120.00")
    assert (bracket["status"], bracket["triggerPrice"]) == ("New", None)
    assert (bracket["takeProfitTriggerPrice"], bracket["stopLossTriggerPrice"]) == (
        "130.00",
        "80.00",
    )
    assert now["code"] == "INVALID_ORDER"
    assert now["error"]["details"]["reason"] == "TRIGGER_WOULD_FIRE"
    # A body the gateway cannot read refuses the whole batch before anything is placed.
    mark = await client.post(
        "/api/v1/orders",
        json=[
            {**order, "orderType": "Market", "triggerPrice": "125"},
            {**order, "orderType": "Market", "triggerPrice": "120", "triggerBy": "MarkPrice"},
        ],
        headers=bob,
    )
    assert mark.status == 400
    refused = await mark.json()
    assert (refused["code"], refused["error"]["details"]) == (
        "INVALID_CLIENT_REQUEST",
        {"field": "triggerBy"},
    )

    opened = await (await client.get("/api/v1/orders?symbol=TATA_INR", headers=bob)).json()
    assert sorted(o["status"] for o in opened) == ["New", "TriggerPending"]
