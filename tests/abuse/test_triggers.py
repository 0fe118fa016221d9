"""Bad conditional orders against the real stack: each is refused with a 4xx, a stable code
and the engine's reason, and leaves the engine's state hash as it was (tests.abuse.rest).
Triggers at the last price or in a market with no trade yet, a `triggerBy` other than
LastPrice, one trigger over the pending limit, trigger prices that are negative, too fine
or off the market's range, and take-profit / stop-loss legs on the wrong side."""

from __future__ import annotations

from typing import Any

import pytest

from tests.abuse.rest import funded_user, judged, state_hash
from tests.gateway.conftest import Stack

# A stop-limit sell of 2 TATA at 1490 once the price falls to 1500 (the last price is 1600).
STOP = {
    "symbol": "TATA_INR",
    "side": "Ask",
    "orderType": "Limit",
    "price": "1490",
    "triggerPrice": "1500",
    "triggerQuantity": "2",
}
# A buy of 1 TATA at 1600 with a take-profit above and a stop-loss below.
BRACKET = {
    "symbol": "TATA_INR",
    "side": "Bid",
    "orderType": "Limit",
    "price": "1600",
    "quantity": "1",
    "takeProfitTriggerPrice": "1800",
    "stopLossTriggerPrice": "1400",
}
GONE = object()  # the field is left out

# (what is wrong, the body's changes, HTTP status, code, the engine's reason or None)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], int, str, str | None]] = [
    ("at the last price", STOP, {"triggerPrice": "1600"}, 400, "INVALID_ORDER",
     "TRIGGER_WOULD_FIRE"),
    ("no trade yet", STOP, {"symbol": "BTC_USDT", "price": "64000", "triggerPrice": "65000",
                            "triggerQuantity": "0.01"}, 400, "INVALID_ORDER",
     "TRIGGER_WOULD_FIRE"),
    ("market trigger at the last price", STOP,
     {"orderType": "Market", "price": GONE, "triggerPrice": "1600.00"}, 400, "INVALID_ORDER",
     "TRIGGER_WOULD_FIRE"),
    ("triggerBy MarkPrice", STOP, {"triggerBy": "MarkPrice"}, 400, "INVALID_CLIENT_REQUEST",
     None),
    ("triggerBy IndexPrice on a leg", BRACKET, {"stopLossTriggerBy": "IndexPrice"}, 400,
     "INVALID_CLIENT_REQUEST", None),
    ("triggerBy not a string", STOP, {"triggerBy": 1}, 400, "INVALID_CLIENT_REQUEST", None),
    ("negative trigger price", STOP, {"triggerPrice": "-1500"}, 400, "INVALID_PRICE", None),
    ("zero trigger price", STOP, {"triggerPrice": "0"}, 400, "INVALID_PRICE", None),
    ("trigger price finer than the tick", STOP, {"triggerPrice": "1500.001"}, 400,
     "INVALID_PRICE", None),
    ("trigger price above the market's maximum", STOP, {"triggerPrice": "99999999999"}, 400,
     "INVALID_PRICE", None),
    ("trigger price not a number", STOP, {"triggerPrice": "1e3"}, 400, "INVALID_PRICE", None),
    ("triggerQuantity without triggerPrice", STOP, {"triggerPrice": GONE}, 400,
     "INVALID_CLIENT_REQUEST", None),
    ("quantity and triggerQuantity", STOP, {"quantity": "2"}, 400, "INVALID_CLIENT_REQUEST",
     None),
    ("negative triggerQuantity", STOP, {"triggerQuantity": "-2"}, 400, "INVALID_QUANTITY",
     None),
    ("take-profit below the stop-loss of a buy", BRACKET,
     {"takeProfitTriggerPrice": "1400", "stopLossTriggerPrice": "1800"}, 400, "INVALID_ORDER",
     "INVALID_ORDER"),
    ("take-profit above the stop-loss of a sell", BRACKET,
     {"side": "Ask", "takeProfitTriggerPrice": "1800", "stopLossTriggerPrice": "1400"}, 400,
     "INVALID_ORDER", "INVALID_ORDER"),
    ("take-profit and stop-loss at one price", BRACKET,
     {"takeProfitTriggerPrice": "1500", "stopLossTriggerPrice": "1500"}, 400, "INVALID_ORDER",
     "INVALID_ORDER"),
    ("a leg's limit price without its trigger", BRACKET,
     {"stopLossTriggerPrice": GONE, "stopLossLimitPrice": "1390"}, 400, "INVALID_ORDER",
     "INVALID_ORDER"),
    ("a leg's limit price finer than the tick", BRACKET, {"takeProfitLimitPrice": "1790.005"},
     400, "INVALID_PRICE", None),
    ("a negative stop-loss", BRACKET, {"stopLossTriggerPrice": "-1400"}, 400, "INVALID_PRICE",
     None),
]  # fmt: skip


def _body(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    body = {**base, **changes}
    return {k: v for k, v in body.items() if v is not GONE}


async def _traded_at_1600(stack: Stack) -> dict[str, str]:
    """Alice, funded, after a trade at 1600 in TATA_INR (BTC_USDT has none)."""
    alice = await funded_user(stack, "alice@example.test")
    bob = await funded_user(stack, "bob@example.test")
    for auth, side in ((alice, "Ask"), (bob, "Bid")):
        order = {"symbol": "TATA_INR", "side": side, "orderType": "Limit", "price": "1600",
                 "quantity": "1"}  # fmt: skip
        response = await stack.client.post("/api/v1/order", json=order, headers=auth)
        assert response.status == 200, await response.text()
    return alice


async def test_bad_trigger_orders_are_refused_with_their_code_and_change_nothing(
    stack: Stack,
) -> None:
    alice = await _traded_at_1600(stack)
    for what, base, changes, status, code, reason in CASES:
        body = _body(base, changes)
        got, answer = await judged(
            "triggers",
            stack,
            lambda body=body: stack.client.post("/api/v1/order", json=body, headers=alice),  # type: ignore[misc]
        )
        assert (got, answer["code"]) == (status, code), (what, answer)
        if reason is not None:
            assert answer["error"]["details"]["reason"] == reason, (what, answer)
    # The same bodies are fine once what is wrong is put right: the refusals were for it.
    ok, placed = await judged(
        "triggers", stack, lambda: stack.client.post("/api/v1/order", json=STOP, headers=alice)
    )
    assert (ok, placed["status"]) == (200, "TriggerPending")


@pytest.mark.parametrize("in_a_batch", [False, True])
async def test_one_trigger_over_the_pending_limit_is_refused(
    stack: Stack, in_a_batch: bool
) -> None:
    alice = await _traded_at_1600(stack)
    limit = 100  # per user and market (engine_svc/core)
    batch = [{**STOP, "triggerPrice": str(1000 + i)} for i in range(limit)]
    response = await stack.client.post("/api/v1/orders", json=batch, headers=alice)
    assert response.status == 200
    assert [o["status"] for o in await response.json()] == ["TriggerPending"] * limit
    one_more = {**STOP, "triggerPrice": "1550"}
    before = await state_hash(stack)
    if in_a_batch:  # a batch answers 200 with each order's own answer
        response = await stack.client.post("/api/v1/orders", json=[one_more], headers=alice)
        assert response.status == 200
        answer = (await response.json())[0]
    else:
        got, answer = await judged(
            "triggers",
            stack,
            lambda: stack.client.post("/api/v1/order", json=one_more, headers=alice),
        )
        assert got == 400
    assert answer["code"] == "INVALID_ORDER"
    assert answer["error"]["details"]["reason"] == "TRIGGER_LIMIT"
    assert await state_hash(stack) == before
