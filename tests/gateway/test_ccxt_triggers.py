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
    assert (cancelled["status"], cancelled["triggerPrice"]) == ("canceled", 1700)
    await alice.create_trigger_order(SYMBOL, "market", "buy", 1, None, 1800)
    everything = await alice.cancel_all_orders(SYMBOL)
    # the fired sell and the pending trigger, each with its trigger price
    assert sorted(o["triggerPrice"] for o in everything) == [1500, 1800]
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


async def test_ccxt_fetch_order_shows_what_a_trigger_was_after_it_fired_failed_or_ended(
    stack: Stack,
    traders: tuple[Any, Any],  # noqa: F811
) -> None:
    """`fetchOrder` (order history, then the engine's GET /api/v1/order) and
    `fetchOpenOrder` (the engine alone, whatever the ledger has stored yet) keep a
    trigger's price, when it fired, its legs' links and why it failed."""
    alice, bob = traders
    await alice.load_markets()
    await bob.load_markets()
    await last_trade_at(alice, bob, 1600)
    resting = await alice.create_trigger_order(SYMBOL, "limit", "sell", 2, 1490, 1500)
    filled = await alice.create_trigger_order(SYMBOL, "market", "sell", 1, None, 1550)
    failing = await bob.create_trigger_order(SYMBOL, "market", "sell", 50, None, 1450)
    cancelled = await alice.create_trigger_order(SYMBOL, "market", "buy", 1, None, 1800)
    await alice.cancel_order(cancelled["id"], SYMBOL)
    await bob.create_order(SYMBOL, "limit", "buy", 1, 1400)  # what the market stop sells to
    # A trade at 1500 fires both of Alice's stops: 1550 first (the nearer in the move),
    # selling 1 to the bid at 1400; then 1500, whose sell rests at 1490.
    await last_trade_at(alice, bob, 1500)
    # A trade at 1450 fires Bob's stop, which cannot sell 50 TATA: it fails.
    await bob.create_order(SYMBOL, "limit", "buy", 1, 1450)
    await alice.create_order(SYMBOL, "limit", "sell", 1, 1450)

    def fired(order: dict[str, Any], trigger: float, status: str, info_status: str) -> None:
        assert (order["triggerPrice"], order["status"]) == (trigger, status), order
        assert order["info"]["status"] == info_status
        assert order["info"]["triggerBy"] == "LastPrice"
        assert order["info"]["triggeredAt"] is not None, order["info"]

    async def both(ccxt_client: Any, order_id: str) -> list[dict[str, Any]]:
        return [
            await ccxt_client.fetch_open_order(order_id, SYMBOL),
            await ccxt_client.fetch_order(order_id, SYMBOL),
        ]

    async def engine(ccxt_client: Any, order_id: str) -> list[dict[str, Any]]:
        return [await ccxt_client.fetch_open_order(order_id, SYMBOL)]

    async def check_all(views: Any) -> None:
        for order in await views(alice, resting["id"]):
            fired(order, 1500, "open", "New")
            assert (order["price"], order["amount"]) == (1490, 2)
        for order in await views(alice, filled["id"]):
            fired(order, 1550, "closed", "Filled")
            assert order["filled"] == 1
        for order in await views(bob, failing["id"]):
            fired(order, 1450, "rejected", "TriggerFailed")
            assert "INSUFFICIENT_FUNDS" in order["info"]["triggerFailure"]
        for order in await views(alice, cancelled["id"]):
            assert (order["triggerPrice"], order["status"]) == (1800, "canceled")
            assert order["info"]["triggeredAt"] is None

    # The engine's view at once; order history (the ledger) may still hold a trigger as
    # pending until it has caught up.
    await check_all(engine)
    await stack.caught_up()
    await check_all(both)

    # A take-profit / stop-loss pair: the take-profit fires, the stop-loss is cancelled.
    await alice.cancel_order(resting["id"], SYMBOL)
    parent = await bob.create_order_with_take_profit_and_stop_loss(
        SYMBOL, "limit", "buy", 1, 1460, 1700, 1300
    )
    await alice.create_order(SYMBOL, "limit", "sell", 1, 1460)  # fills the parent
    legs = {o["triggerPrice"]: o["id"] for o in await bob.fetch_open_orders(SYMBOL)}
    take_profit, stop_loss = legs[1700], legs[1300]
    await alice.create_order(SYMBOL, "limit", "buy", 1, 1650)  # what the take-profit sells to
    await last_trade_at(alice, bob, 1700)
    await stack.caught_up()
    for order in await both(bob, take_profit):
        fired(order, 1700, "closed", "Filled")
        assert order["info"]["relatedOrderId"] == stop_loss
        assert order["info"]["parentOrderId"] == parent["id"]
    for order in await both(bob, stop_loss):
        assert (order["triggerPrice"], order["status"]) == (1300, "canceled")
        assert order["info"]["relatedOrderId"] == take_profit
        assert order["info"]["triggeredAt"] is None
