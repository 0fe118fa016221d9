"""Binance's own client libraries, unchanged, against the gateway: python-binance's `Client`
and `AsyncClient` and the official binance-sdk-spot, pointed here by their base URL options
and signing with an HMAC key. Alice trades on the Binance face, Bob on the Backpack face;
they fill against each other and each sees the same trades and balances.

The two synchronous clients run on a worker thread: the gateway serves on this loop.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from binance import AsyncClient, Client
from binance_common.configuration import ConfigurationRestAPI
from binance_sdk_spot.rest_api.models import (
    KlinesIntervalEnum,
    NewOrderSideEnum,
    NewOrderTimeInForceEnum,
    NewOrderTypeEnum,
)
from binance_sdk_spot.spot import Spot

from tests.gateway.conftest import Stack
from tests.gateway.test_binance_hmac import hmac_key
from tests.gateway.test_binance_public import order
from tests.gateway.test_rest import fund, signup

SYMBOL = "TATAINR"


def python_binance(url: str, key: dict[str, Any]) -> Client:
    client = Client(key["apiKey"], key["secret"], ping=False)
    client.API_URL = f"{url}/api"  # its one base-URL setting: it appends /v3/<path>
    return client


def sdk(url: str, key: dict[str, Any]) -> Any:
    # No retries: a signed request sent twice is a replay here, as at Binance.
    config = ConfigurationRestAPI(
        api_key=key["apiKey"], api_secret=key["secret"], base_path=url, timeout=30_000, retries=0
    )
    return Spot(config_rest_api=config).rest_api


async def balance(stack: Stack, auth: dict[str, str], asset: str) -> Decimal:
    response = await stack.client.get("/api/v1/capital", headers=auth)
    return Decimal((await response.json())[asset]["available"])


async def test_python_binance_client_trades_against_a_backpack_user(stack: Stack) -> None:
    _, alice = await signup(stack, "python-binance@binance.test")
    _, bob = await signup(stack, "bob-pb@binance.test")
    await fund(stack, alice, "TATA", "10")
    await fund(stack, bob, "INR", "100000")
    client = python_binance(stack.url, await hmac_key(stack, alice))

    def public() -> tuple[Any, ...]:
        return (
            client.ping(),
            client.get_server_time(),
            client.get_symbol_info(SYMBOL),
            client.get_order_book(symbol=SYMBOL),
            client.get_klines(symbol=SYMBOL, interval=Client.KLINE_INTERVAL_1MINUTE),
        )

    ping, server_time, info, book, klines = await asyncio.to_thread(public)
    assert ping == {}
    assert server_time["serverTime"] > 0
    assert (info["baseAsset"], info["quoteAsset"]) == ("TATA", "INR")
    assert "lastUpdateId" in book
    assert isinstance(klines, list)

    placed = await asyncio.to_thread(
        client.order_limit_sell, symbol=SYMBOL, quantity="3", price="1600"
    )
    assert (placed["status"], placed["type"]) == ("NEW", "LIMIT")
    order_id = placed["orderId"]
    far = await asyncio.to_thread(
        client.order_limit_sell, symbol=SYMBOL, quantity="1", price="1900"
    )
    await order(stack, bob, side="Bid", price="1600", quantity="2")  # Bob, on the Backpack face

    fetched = await asyncio.to_thread(client.get_order, symbol=SYMBOL, orderId=order_id)
    assert (fetched["status"], Decimal(fetched["executedQty"])) == ("PARTIALLY_FILLED", Decimal(2))
    named = placed["clientOrderId"]  # python-binance's own x-<broker><uuid> name, kept
    assert named.startswith("x-")
    assert fetched["clientOrderId"] == named
    by_name = await asyncio.to_thread(client.get_order, symbol=SYMBOL, origClientOrderId=named)
    assert by_name["orderId"] == order_id
    opened = await asyncio.to_thread(client.get_open_orders, symbol=SYMBOL)
    assert {o["orderId"] for o in opened} == {order_id, far["orderId"]}
    cancelled = await asyncio.to_thread(client.cancel_order, symbol=SYMBOL, orderId=far["orderId"])
    assert cancelled["status"] == "CANCELED"
    account = await asyncio.to_thread(client.get_account)
    tata = next(b for b in account["balances"] if b["asset"] == "TATA")
    assert (Decimal(tata["free"]), Decimal(tata["locked"])) == (Decimal(7), Decimal(1))

    await stack.caught_up()
    trades = await asyncio.to_thread(client.get_my_trades, symbol=SYMBOL)
    assert [(Decimal(t["qty"]), t["isBuyer"]) for t in trades] == [(Decimal(2), False)]
    bobs = await stack.client.get("/wapi/v1/history/fills?symbol=TATA_INR", headers=bob)
    assert [f["tradeId"] for f in await bobs.json()] == [str(trades[0]["id"])]
    assert await balance(stack, bob, "TATA") == 2
    assert await balance(stack, alice, "INR") == Decimal(
        await asyncio.to_thread(lambda: client.get_asset_balance("INR")["free"])
    )


async def test_python_binance_async_client(stack: Stack) -> None:
    _, alice = await signup(stack, "async-binance@binance.test")
    await fund(stack, alice, "INR", "10000")
    key = await hmac_key(stack, alice)
    client = AsyncClient(key["apiKey"], key["secret"])
    client.API_URL = f"{stack.url}/api"
    try:
        assert await client.ping() == {}
        assert (await client.get_exchange_info())["symbols"]
        bid = await client.order_limit_buy(symbol=SYMBOL, quantity="2", price="1500")
        assert (await client.get_order(symbol=SYMBOL, orderId=bid["orderId"]))["status"] == "NEW"
        assert [o["orderId"] for o in await client.get_open_orders(symbol=SYMBOL)] == [
            bid["orderId"]
        ]
        await client.cancel_order(symbol=SYMBOL, orderId=bid["orderId"])
        assert await client.get_open_orders(symbol=SYMBOL) == []
        inr = await client.get_asset_balance("INR")
        assert (Decimal(inr["free"]), Decimal(inr["locked"])) == (Decimal(10000), Decimal(0))
    finally:
        await client.close_connection()


async def test_binance_sdk_spot_trades_against_a_backpack_user(stack: Stack) -> None:
    _, alice = await signup(stack, "sdk@binance.test")
    _, bob = await signup(stack, "bob-sdk@binance.test")
    await fund(stack, alice, "INR", "10000")
    await fund(stack, bob, "TATA", "10")
    api = sdk(stack.url, await hmac_key(stack, alice))

    def public() -> tuple[Any, ...]:
        return (
            api.ping(),
            api.time().data(),
            api.exchange_info(symbol=SYMBOL).data(),
            api.depth(symbol=SYMBOL).data(),
            api.klines(symbol=SYMBOL, interval=KlinesIntervalEnum.INTERVAL_1m).data(),
        )

    ping, server_time, info, depth, klines = await asyncio.to_thread(public)
    assert ping.status == 200
    assert ping.rate_limits  # read from X-MBX-USED-WEIGHT-1M
    assert server_time.server_time > 0
    assert info.symbols[0].symbol == SYMBOL
    assert depth.last_update_id is not None
    assert isinstance(klines, list)

    await order(stack, bob, side="Ask", price="1700", quantity="4")  # Bob, on the Backpack face
    bought = await asyncio.to_thread(
        lambda: api.new_order(
            symbol=SYMBOL,
            side=NewOrderSideEnum.BUY,
            type=NewOrderTypeEnum.LIMIT,
            time_in_force=NewOrderTimeInForceEnum.GTC,
            quantity=1.0,
            price=1700.0,
        ).data()
    )
    assert bought.status == "FILLED"
    resting = await asyncio.to_thread(
        lambda: api.new_order(
            symbol=SYMBOL,
            side=NewOrderSideEnum.BUY,
            type=NewOrderTypeEnum.LIMIT,
            time_in_force=NewOrderTimeInForceEnum.GTC,
            quantity=1.0,
            price=1500.0,
        ).data()
    )
    got = await asyncio.to_thread(
        lambda: api.get_order(symbol=SYMBOL, order_id=resting.order_id).data()
    )
    assert got.status == "NEW"
    opened = await asyncio.to_thread(lambda: api.get_open_orders(symbol=SYMBOL).data())
    assert [o.order_id for o in opened] == [resting.order_id]
    await asyncio.to_thread(lambda: api.delete_order(symbol=SYMBOL, order_id=resting.order_id))
    account = await asyncio.to_thread(lambda: api.get_account().data())
    tata = next(b for b in account.balances if b.asset == "TATA")
    assert Decimal(tata.free) == 1

    await stack.caught_up()
    trades = await asyncio.to_thread(lambda: api.my_trades(symbol=SYMBOL).data())
    assert [(Decimal(t.qty), t.is_buyer) for t in trades] == [(Decimal(1), True)]
    bobs = await stack.client.get("/wapi/v1/history/fills?symbol=TATA_INR", headers=bob)
    assert [f["tradeId"] for f in await bobs.json()] == [str(trades[0].id)]
    assert await balance(stack, bob, "TATA") == 6  # 10, less 4 offered
