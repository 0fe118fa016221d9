"""Two gateways on one Redis act as one: replicas (or worker processes sharing a port) keep
no limit of their own, so a client cannot double its rate or replay a signature by
switching between them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.gateway.conftest import Stack
from tests.gateway.signing import signed_headers
from tests.gateway.test_rest import error_of, fund, signup

RATE = 5  # order actions per second per user, in bursts of 5


async def test_two_gateways_share_the_order_limit(stack_factory: Any) -> None:
    first: Stack = await stack_factory(order_rate=RATE)
    second: Stack = await stack_factory(order_rate=RATE)
    _, auth = await signup(first, "grace@example.com")
    await fund(first, auth, "INR", "1000")
    await asyncio.sleep(1.0)  # the faucet's action has been paid back: a full burst is left
    order = {"symbol": "TATA_INR", "side": "Bid", "price": "1", "quantity": "1"}
    started = time.monotonic()
    responses = await asyncio.gather(
        *(
            (first, second)[i % 2].client.post("/api/v1/order", json=order, headers=auth)
            for i in range(2 * RATE)
        )
    )
    elapsed = time.monotonic() - started
    statuses = [r.status for r in responses]
    assert set(statuses) == {200, 429}, statuses
    # One burst plus what refilled meanwhile, across both: each alone would have allowed RATE.
    assert statuses.count(200) <= RATE + int(RATE * elapsed), (statuses, elapsed)
    assert elapsed < 1.0, "too slow to tell one shared limit from two"


async def test_a_signature_used_on_one_gateway_is_a_replay_on_the_other(
    stack_factory: Any,
) -> None:
    first: Stack = await stack_factory()
    second: Stack = await stack_factory()
    _, auth = await signup(first, "heidi@example.com")
    created = await (
        await first.client.post("/api/v1/auth/apikeys", json={"label": "bot"}, headers=auth)
    ).json()
    headers = signed_headers(created["secret"], "balanceQuery")
    assert (await first.client.get("/api/v1/capital", headers=headers)).status == 200
    replayed = await second.client.get("/api/v1/capital", headers=headers)
    assert await error_of(replayed) == (401, "INVALID_SIGNATURE")
