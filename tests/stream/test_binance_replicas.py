"""An `executionReport` names the order as its `newClientOrderId` did on a gateway replica
that never saw the name: one replica places the named order, the user-data stream is on the
other, whose memory lacks the name (replicas are separate processes; these two share one, so
the test empties it), and the next event of the order reads the name from the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from gateway_svc.binance import client_ids
from tests.gateway.conftest import Stack
from tests.gateway.test_binance_hmac import hmac_key, signed_query
from tests.gateway.test_rest import fund, signup
from tests.stream.conftest import Live
from tests.stream.test_binance_ws import next_json, user_stream_live

NAME = "x-replica-named-order"


async def report(ws: aiohttp.ClientWebSocketResponse, order_id: int, kind: str) -> Any:
    async with asyncio.timeout(30):
        while True:
            event = await next_json(ws)
            if event["e"] == "executionReport" and (event["i"], event["x"]) == (order_id, kind):
                return event


async def test_an_event_on_another_replica_reads_the_orders_name(
    live: Live, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    placing = live.stack
    streaming: Stack = await stack_factory(stream_address=f"127.0.0.1:{live.stream_port}")
    user, auth = await signup(placing, "replicas@binance.test")
    await fund(placing, auth, "INR", "1000")
    key = await hmac_key(placing, auth)
    headers = {"X-MBX-APIKEY": key["apiKey"]}
    created = await streaming.client.post("/api/v3/userDataStream", headers=headers)
    listen_key = (await created.json())["listenKey"]
    await live.published()

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(streaming.url.replace("http://", "ws://") + f"/ws/{listen_key}") as ws,
    ):
        await user_stream_live(streaming, ws, user)
        query = signed_query(
            key["secret"], symbol="TATAINR", side="BUY", type="LIMIT", timeInForce="GTC",
            quantity="1", price="100", newClientOrderId=NAME,
        )  # fmt: skip
        placed = await placing.client.post(f"/api/v3/order?{query}", headers=headers)
        assert placed.status == 200, await placed.text()
        order_id = (await placed.json())["orderId"]
        await report(ws, order_id, "NEW")

        client_ids._names.clear()  # the streaming replica never read the name
        cancelled = await placing.client.delete(  # on the Backpack face: no name read
            "/api/v1/order", json={"symbol": "TATA_INR", "orderId": str(order_id)}, headers=auth
        )
        assert cancelled.status == 200, await cancelled.text()
        event = await report(ws, order_id, "CANCELED")
        assert event["c"] == NAME
