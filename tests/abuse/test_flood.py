"""Rate limits under a flood, on the real stack with the production order limit (10 order
actions per second per user) and 40 market-data requests per second per address: one user floods
orders and one address floods depth while another user trades at 4 orders/s and another
address reads at 20/s (bench.flood, each client from its own loopback address).

The flooders get 429 with Retry-After and are allowed no more than the limit over the phase
plus one burst; the others get no 429 and no error. Latencies go to the report only (under
"rate_limits"): in this test the gateway, the engine, the ledger and the clients share one
event loop, so they say little; `python -m bench.flood` measures them with each
service in its own process.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from bench.flood import ORDER_RATE, flood
from tests.abuse.tally import TALLY
from tests.gateway.conftest import Stack
from tests.gateway.test_rest import fund, signup

SECONDS = float(os.environ.get("FLOOD_SECONDS", "3"))
# Below production's 100: the flooders share one event loop with the whole stack, which on
# a busy machine answers fewer than 100 depth requests a second (84 seen in CI), and then
# never exceed it. The reader's 20/s stays well within.
MARKET_RATE = 40


async def test_flooders_are_held_to_their_limits_and_others_are_not_refused(
    stack_factory: Callable[..., Awaitable[Stack]],
) -> None:
    stack = await stack_factory(order_rate=ORDER_RATE, market_rate=MARKET_RATE)
    tokens = []
    for email in ("trader@example.test", "flooder@example.test"):
        _, auth = await signup(stack, email)
        await fund(stack, auth, "INR", "100000")
        tokens.append(auth["Authorization"].removeprefix("Bearer "))

    baseline = await flood(stack.url, *tokens, seconds=SECONDS, flooding=False)
    flooded = await flood(
        stack.url, *tokens, seconds=SECONDS, flooding=True, market_rate=MARKET_RATE
    )
    TALLY.figures["rate_limits"] = {"baseline": baseline.as_json(), "flood": flooded.as_json()}

    for name, limit in (("order_flooder", ORDER_RATE), ("market_flooder", MARKET_RATE)):
        flooder = flooded.clients[name]
        assert flooder.statuses[429] > 0, name
        assert flooder.codes["TOO_MANY_REQUESTS"] == flooder.statuses[429], name
        assert flooder.refusals_without_retry_after == 0, name
        assert set(flooder.statuses) == {200, 429}, (name, flooder.statuses)
        # GCRA lets through at most one burst (`limit`) beyond `limit` per second.
        assert flooder.allowed <= limit * flooded.seconds + limit, (name, flooder.allowed)
    for phase in (baseline, flooded):
        for name in ("trader", "reader"):
            client = phase.clients[name]
            assert set(client.statuses) == {200}, (name, client.statuses, client.codes)
