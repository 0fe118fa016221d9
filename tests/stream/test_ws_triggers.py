"""The private order stream carries a conditional order's own updates: triggerPlaced when it
is placed, triggerFailed when the order it became is refused, orderCancelled when cancelled."""

from __future__ import annotations

import aiohttp

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from tests.gateway.test_rest import fund, signup
from tests.stream.conftest import Live
from tests.stream.test_ws import MARKET, frames_until, sell, subscribe


async def trade_at(live: Live, price: str) -> None:
    """Users 9 and 10 trade once at `price`, on the engine directly."""
    stub = live.stack.engine.stub
    await stub.Deposit(epb.DepositRequest(user_id=9, asset="TATA", amount="10"))
    await stub.Deposit(epb.DepositRequest(user_id=10, asset="INR", amount="10000"))
    await sell(live, price)
    reply = await stub.PlaceOrder(
        epb.PlaceOrderRequest(
            user_id=10, market=MARKET, side=cpb.SIDE_BUY, type=cpb.ORDER_TYPE_LIMIT,
            price=price, quantity="1",
        )
    )  # fmt: skip
    assert reply.code == 0, reply.message


async def test_trigger_updates_on_the_private_stream(live: Live) -> None:
    _, auth = await signup(live.stack, "stops@example.test")
    await fund(live.stack, auth, "INR", "1000")  # no TATA: its stop sell cannot pay
    await trade_at(live, "100")
    await live.published()
    token = auth["Authorization"].removeprefix("Bearer ")
    async with aiohttp.ClientSession() as session, session.ws_connect(live.ws_url) as ws:
        await subscribe(ws, "account.orderUpdate", token=token)
        stop = {"symbol": MARKET, "side": "Ask", "orderType": "Market", "triggerQuantity": "1"}
        placed = await live.stack.client.post(
            "/api/v1/order", json={**stop, "triggerPrice": "95"}, headers=auth
        )
        assert placed.status == 200, await placed.text()
        doomed = (await placed.json())["id"]
        other = await live.stack.client.post(
            "/api/v1/order", json={**stop, "triggerPrice": "90"}, headers=auth
        )
        cancelled = (await other.json())["id"]
        await live.stack.client.delete(
            "/api/v1/order", json={"symbol": MARKET, "orderId": cancelled}, headers=auth
        )
        await trade_at(live, "95")  # fires the first stop, which has no TATA to sell
        frames = await frames_until(ws, lambda fs: len(fs) >= 4)
    updates = [(f["data"]["e"], f["data"]["i"], f["data"]["X"]) for f in frames]
    assert updates == [
        ("triggerPlaced", doomed, "TriggerPending"),
        ("triggerPlaced", cancelled, "TriggerPending"),
        ("orderCancelled", cancelled, "Cancelled"),
        ("triggerFailed", doomed, "TriggerFailed"),
    ]
    assert frames[0]["data"]["P"] == "95.00"
    assert "TATA" in frames[3]["data"]["r"]  # what it lacked
