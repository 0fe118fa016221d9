"""ccxt's `backpack` class, unchanged, with conditional orders: createTriggerOrder and
createOrderWithTakeProfitAndStopLoss, then fetchOpenOrders, fetchOpenOrder, cancelOrder and
cancelAllOrders on what they placed, and a stop that fires on a trade."""

from __future__ import annotations

from typing import Any

import ccxt.async_support as ccxt
import pytest

from tests.gateway.conftest import Stack
from tests.gateway.test_ccxt import SYMBOL, traders  # noqa: F401  (the fixture)


async def last_trade_at(alice: Any, bob: Any, price: float) -> None:
    await alice.create_order(SYMBOL, "limit", "sell", 1, price)
    await bob.create_order(SYMBOL, "limit", "buy", 1, price)


async def test_ccxt_trigger_orders_wait_fire_and_cancel(
    stack: Stack,
    traders: tuple[Any, Any],  # noqa: F811
) -> None:
    alice, bob = traders
    await alice.load_markets()
    await bob.load_markets()
    with pytest.raises(ccxt.InvalidOrder, match="no trade yet"):
        await alice.create_trigger_order(SYMBOL, "market", "sell", 2, None, 1500)
    await last_trade_at(alice, bob, 1600)

    stop = await alice.create_trigger_order(SYMBOL, "limit", "sell", 2, 1490, 1500)
    assert (stop["status"], stop["triggerPrice"], stop["amount"]) == ("open", 1500, 2)
    assert stop["info"]["status"] == "TriggerPending"
    assert stop["info"]["triggerQuantity"] == "2"
    balance = await alice.fetch_balance()
    assert balance["TATA"]["used"] == 0  # a pending trigger locks nothing

    # At the last price it would fire at once: refused, with its own reason.
    with pytest.raises(ccxt.InvalidOrder, match="last price"):
        await alice.create_trigger_order(SYMBOL, "market", "sell", 1, None, 1600)

    opened = await alice.fetch_open_orders(SYMBOL)
    assert [(o["id"], o["triggerPrice"]) for o in opened] == [(stop["id"], 1500)]
    looked_up = await alice.fetch_open_order(stop["id"], SYMBOL)
    assert looked_up["status"] == "open"

    # A trade at 1500 fires it: the sell it became rests at 1490, with the same id.
    await bob.create_order(SYMBOL, "limit", "buy", 1, 1400)
    await alice.create_order(SYMBOL, "limit", "sell", 1, 1500)
    await bob.create_order(SYMBOL, "limit", "buy", 1, 1500)
    fired = await alice.fetch_open_order(stop["id"], SYMBOL)
    assert (fired["status"], fired["price"], fired["info"]["status"]) == ("open", 1490, "New")
    book = await bob.fetch_order_book(SYMBOL)
    assert book["asks"][0] == [1490.0, 2.0]

    other = await alice.create_trigger_order(SYMBOL, "market", "buy", 1, None, 1700)
    cancelled = await alice.cancel_order(other["id"], SYMBOL)
    assert cancelled["status"] == "canceled"
    await alice.create_trigger_order(SYMBOL, "market", "buy", 1, None, 1800)
    everything = await alice.cancel_all_orders(SYMBOL)
    assert len(everything) == 2  # the fired sell and the pending trigger
    assert await alice.fetch_open_orders(SYMBOL) == []

    # Order history (the ledger) keeps each trigger's lifecycle and its trigger fields.
    await stack.caught_up()
    history = {o["id"]: o for o in await alice.fetch_orders(SYMBOL)}
    assert (history[stop["id"]]["triggerPrice"], history[stop["id"]]["status"]) == (
        1500,
        "canceled",
    )
    assert history[stop["id"]]["info"]["triggeredAt"] is not None
    assert history[other["id"]]["status"] == "canceled"
    assert history[other["id"]]["info"]["triggeredAt"] is None


async def test_ccxt_take_profit_and_stop_loss_are_linked_legs(
    stack: Stack,
    traders: tuple[Any, Any],  # noqa: F811
) -> None:
    alice, bob = traders
    await alice.load_markets()
    await bob.load_markets()
    await last_trade_at(alice, bob, 1600)
    await alice.create_order(SYMBOL, "limit", "sell", 3, 1600)
    parent = await bob.create_order_with_take_profit_and_stop_loss(
        SYMBOL, "limit", "buy", 3, 1600, 1800, 1400, {"stopLossLimitPrice": "1390"}
    )
    assert parent["status"] == "closed"
    assert (parent["takeProfitPrice"], parent["stopLossPrice"]) == (1800, 1390)
    legs = await bob.fetch_open_orders(SYMBOL)
    assert sorted((o["side"], o["triggerPrice"], o["amount"]) for o in legs) == [
        ("sell", 1400, 3),
        ("sell", 1800, 3),
    ]
    ids = {o["id"] for o in legs}
    assert {o["info"]["relatedOrderId"] for o in legs} == ids
    with pytest.raises(ccxt.BadRequest, match="LastPrice"):
        await bob.create_order(SYMBOL, "limit", "buy", 1, 1600, {"triggerBy": "MarkPrice"})
    await bob.cancel_order(legs[0]["id"], SYMBOL)  # one cancels the pair
    assert await bob.fetch_open_orders(SYMBOL) == []
