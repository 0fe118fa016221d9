"""python-binance's `BinanceSocketManager`, unchanged, on the gateway's Binance streams: its
user socket (the WebSocket API's signed user-data subscription, with an HMAC key) carries the
caller's `executionReport` and `outboundAccountPosition` events as an order rests and fills
against a user on the Backpack face, and its trade socket carries that trade."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from binance import AsyncClient, BinanceSocketManager
from binance.ws.websocket_api import WebsocketAPI

from gateway_svc.streams import UPSTREAMS
from tests.gateway.test_binance_hmac import hmac_key
from tests.gateway.test_binance_public import order
from tests.gateway.test_rest import fund, signup
from tests.stream.conftest import Live

SYMBOL = "TATAINR"


async def until_event(socket: Any, kind: str, **fields: Any) -> dict[str, Any]:
    """The next event of `kind` whose fields have the values given."""
    async with asyncio.timeout(30):
        while True:
            event: dict[str, Any] = await socket.recv()
            if event.get("e") == kind and all(event.get(k) == v for k, v in fields.items()):
                return event


async def test_python_binance_sockets_carry_the_callers_events(live: Live) -> None:
    _, alice = await signup(live.stack, "sockets@python-binance.test")
    _, bob = await signup(live.stack, "bob@python-binance.test")
    await fund(live.stack, alice, "INR", "10000")
    await fund(live.stack, bob, "TATA", "10")
    key = await hmac_key(live.stack, alice)
    await live.published()
    ws = live.stack.url.replace("http://", "ws://")
    client = AsyncClient(key["apiKey"], key["secret"])
    client.API_URL = f"{live.stack.url}/api"
    client.ws_api = WebsocketAPI(url=f"{ws}/ws-api/v3", tld="com")
    manager = BinanceSocketManager(client)
    manager.STREAM_URL = f"{ws}/"
    try:
        async with manager.user_socket() as user, manager.trade_socket(SYMBOL) as trades:
            upstreams = live.stack.client.app[UPSTREAMS].by_topic
            async with asyncio.timeout(30):  # the gateway has subscribed upstream for both
                while not all(  # noqa: ASYNC110
                    any(t.startswith(kind) and u.connected.is_set() for t, u in upstreams.items())
                    for kind in ("orders.", "balances.", "trade.")
                ):
                    await asyncio.sleep(0.05)

            bid = await client.order_limit_buy(symbol=SYMBOL, quantity="2", price="1600")
            new = await until_event(user, "executionReport", i=bid["orderId"], x="NEW")
            assert (new["s"], new["S"], new["o"], new["X"], new["q"]) == (
                SYMBOL, "BUY", "LIMIT", "NEW", "2",
            )  # fmt: skip
            position = await until_event(user, "outboundAccountPosition")
            [inr] = position["B"]
            assert inr["a"] == "INR"
            assert Decimal(inr["l"]) >= 3200  # the bid's price and its fee, locked
            assert Decimal(inr["f"]) + Decimal(inr["l"]) == 10000

            await order(live.stack, bob, side="Ask", orderType="Limit", price="1600", quantity="2")
            filled = await until_event(user, "executionReport", i=bid["orderId"], x="TRADE")
            assert (filled["X"], filled["l"], filled["L"], filled["z"]) == (
                "FILLED", "2", "1600.00", "2",
            )  # fmt: skip
            trade = await until_event(trades, "trade")
            assert (trade["s"], trade["p"], trade["q"]) == (SYMBOL, "1600.00", "2")
            bought = await until_event(user, "outboundAccountPosition")
            assert {b["a"] for b in bought["B"]} <= {"INR", "TATA"}
    finally:
        await client.close_connection()
