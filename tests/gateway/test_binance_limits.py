"""Binance's weight-based limits: the weight used per address and the orders per user, in the
headers Binance clients read, 429 with Retry-After once over, counted in Redis so that every
replica sees the same; and stop-loss / take-profit orders as the engine's triggers."""

from __future__ import annotations

from typing import Any

from tests.gateway.conftest import Stack
from tests.gateway.test_binance_hmac import hmac_key, signed_query
from tests.gateway.test_binance_public import order
from tests.gateway.test_rest import fund, signup

WEIGHT = "X-MBX-USED-WEIGHT-1M"
ORDERS = "X-MBX-ORDER-COUNT-10S"


async def test_weights_add_up_across_replicas_and_refuse_when_over(stack_factory: Any) -> None:
    first = await stack_factory(binance_weight_1m=50)
    second = await stack_factory(binance_weight_1m=50)
    ping = await first.client.get("/api/v3/ping")
    assert ping.headers[WEIGHT] == "1"
    info = await second.client.get("/api/v3/exchangeInfo")  # weight 20, the other replica
    assert (info.status, info.headers[WEIGHT]) == (200, "21")
    limits = (await info.json())["rateLimits"]
    assert limits[0] == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 50,
    }
    assert (await first.client.get("/api/v3/depth?symbol=TATAINR")).headers[WEIGHT] == "26"
    assert (await first.client.get("/api/v3/exchangeInfo")).headers[WEIGHT] == "46"
    refused = await second.client.get("/api/v3/exchangeInfo")
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers[WEIGHT] == "46"  # a refusal counts nothing
    assert (await refused.json())["code"] == -1003
    assert (await second.client.get("/api/v3/ping")).headers[WEIGHT] == "47"
    # The Backpack dialect's market data does not draw on the Binance weight.
    assert (await first.client.get("/api/v1/markets")).status == 200
    assert (await first.client.get("/api/v3/time")).headers[WEIGHT] == "48"


async def test_new_orders_are_counted_per_user_per_10_seconds(stack_factory: Any) -> None:
    stack: Stack = await stack_factory(binance_orders_10s=2)
    _, auth = await signup(stack, "counted@binance.test")
    await fund(stack, auth, "TATA", "10")
    key = await hmac_key(stack, auth)
    headers = {"X-MBX-APIKEY": key["apiKey"]}
    sell = {"symbol": "TATAINR", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC"}

    async def place(price: str) -> Any:
        query = signed_query(key["secret"], **sell, quantity="1", price=price)
        return await stack.client.post(f"/api/v3/order?{query}", headers=headers)

    first, second, third = [await place(p) for p in ("1600", "1601", "1602")]
    assert (first.status, first.headers[ORDERS]) == (200, "1")
    assert (second.status, second.headers[ORDERS]) == (200, "2")
    assert third.status == 429
    assert int(third.headers["Retry-After"]) >= 1
    assert (await third.json())["code"] == -1015
    counts = await stack.client.get(
        f"/api/v3/rateLimit/order?{signed_query(key['secret'])}", headers=headers
    )
    assert counts.status == 200
    ten, one = await counts.json()
    assert (ten["intervalNum"], ten["limit"], ten["count"]) == (10, 2, 2)
    # The gateway's own rule (1000 a second here) has forgotten them within milliseconds.
    assert (one["intervalNum"], one["limit"]) == (1, 1000)
    assert 0 <= one["count"] <= 2
    opened = await stack.client.get(
        f"/api/v3/openOrders?{signed_query(key['secret'], symbol='TATAINR')}", headers=headers
    )
    assert len(await opened.json()) == 2  # the refused order placed nothing


async def test_stop_loss_and_take_profit_are_engine_triggers(stack: Stack) -> None:
    _, alice = await signup(stack, "stops@binance.test")
    _, bob = await signup(stack, "taker@binance.test")
    _, carol = await signup(stack, "carol@binance.test")
    await fund(stack, alice, "TATA", "10")
    await fund(stack, bob, "INR", "100000")
    await fund(stack, bob, "TATA", "10")
    await fund(stack, carol, "INR", "100000")
    # A last price of 1600.
    await order(stack, bob, side="Ask", price="1600", quantity="1")
    await order(stack, carol, side="Bid", price="1600", quantity="1")
    key = await hmac_key(stack, alice)
    headers = {"X-MBX-APIKEY": key["apiKey"]}

    async def place(**fields: str) -> tuple[int, dict[str, Any]]:
        query = signed_query(key["secret"], symbol="TATAINR", side="SELL", **fields)
        response = await stack.client.post(f"/api/v3/order?{query}", headers=headers)
        body: dict[str, Any] = await response.json()
        return response.status, body

    status, stop = await place(type="STOP_LOSS_LIMIT", quantity="2", price="1490",
                               stopPrice="1500", timeInForce="GTC")  # fmt: skip
    assert status == 200, stop
    assert (stop["type"], stop["stopPrice"], stop["status"]) == (
        "STOP_LOSS_LIMIT",
        "1500.00",
        "NEW",
    )
    status, profit = await place(type="TAKE_PROFIT", quantity="1", stopPrice="1700")
    assert (status, profit["type"], profit["isWorking"]) == (200, "TAKE_PROFIT", False)
    # A stop-loss above the price would trigger at once: refused, nothing left pending.
    status, wrong = await place(type="STOP_LOSS", quantity="1", stopPrice="1650")
    assert (status, wrong["code"]) == (400, -2010)
    assert wrong["msg"] == "Stop price would trigger immediately."
    status, bare = await place(type="STOP_LOSS", quantity="1")
    assert (status, bare["code"]) == (400, -1102)
    status, extra = await place(type="LIMIT", quantity="1", price="1700", stopPrice="1650",
                                timeInForce="GTC")  # fmt: skip
    assert (status, extra["code"]) == (400, -1100)
    opened = await stack.client.get(
        f"/api/v3/openOrders?{signed_query(key['secret'], symbol='TATAINR')}", headers=headers
    )
    assert sorted(o["type"] for o in await opened.json()) == ["STOP_LOSS_LIMIT", "TAKE_PROFIT"]

    # Carol buys at 1500: the stop fires and rests its sell at 1490, which Bob's bid takes.
    await order(stack, bob, side="Ask", price="1500", quantity="1")
    await order(stack, carol, side="Bid", price="1500", quantity="1")
    await order(stack, bob, side="Bid", price="1490", quantity="2")
    balance = await stack.client.get(
        f"/api/v3/account?{signed_query(key['secret'])}", headers=headers
    )
    tata = next(b for b in (await balance.json())["balances"] if b["asset"] == "TATA")
    assert (tata["free"], tata["locked"]) == ("8", "0")  # the take-profit still locks nothing
