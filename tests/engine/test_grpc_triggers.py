"""Conditional orders over real gRPC: a trigger order waits in status TRIGGER_PENDING, shows in
open orders, fires on a trade, and its events stream; refusals are result codes."""

from __future__ import annotations

from exchange.common.v1 import common_pb2 as pb
from exchange.engine.v1 import engine_pb2 as epb
from tests.engine.conftest import RunningEngine, deposit
from tests.engine.test_grpc import BUY, MARKET, SELL, limit

ALICE, BOB, CAROL = 1, 2, 3


async def trade_at(engine: RunningEngine, price: str) -> None:
    for user in (ALICE, BOB, CAROL):
        await deposit(engine.stub, user, "TATA", "100")
        await deposit(engine.stub, user, "INR", "100000")
    await engine.stub.PlaceOrder(limit(CAROL, SELL, price, "1"))
    await engine.stub.PlaceOrder(limit(BOB, BUY, price, "1"))


async def test_a_stop_waits_then_fires_on_a_trade(engine: RunningEngine) -> None:
    stub = engine.stub
    early = await stub.PlaceOrder(
        epb.PlaceOrderRequest(
            user_id=ALICE, market="TATA_INR", side=SELL, type=MARKET, quantity="2",
            trigger_price="95",
        )
    )  # fmt: skip
    assert early.code == pb.RESULT_CODE_TRIGGER_WOULD_FIRE
    await trade_at(engine, "100")
    stop = await stub.PlaceOrder(
        epb.PlaceOrderRequest(
            user_id=ALICE, market="TATA_INR", side=SELL, type=MARKET, quantity="2",
            trigger_price="95", client_order_id=7,
        )
    )  # fmt: skip
    assert stop.code == pb.RESULT_CODE_OK, stop.message
    assert stop.order.status == pb.ORDER_STATUS_TRIGGER_PENDING
    assert (stop.order.trigger_price, stop.order.locked) == ("95.00", "0")
    assert not stop.order.trigger_above
    open_orders = await stub.GetOpenOrders(epb.GetOpenOrdersRequest(user_id=ALICE))
    assert [o.order_id for o in open_orders.orders] == [stop.order.order_id]
    got = await stub.GetOrder(epb.GetOrderRequest(user_id=ALICE, client_order_id=7))
    assert got.order.status == pb.ORDER_STATUS_TRIGGER_PENDING

    await stub.PlaceOrder(limit(BOB, BUY, "90", "5"))
    await stub.PlaceOrder(limit(CAROL, SELL, "95", "1"))
    hit = await stub.PlaceOrder(limit(BOB, BUY, "95", "1"))
    # The reply is the placed order's own: the stop's fill is not among its fills.
    assert [(f.price, f.taker_user_id) for f in hit.fills] == [("95.00", BOB)]
    got = await stub.GetOrder(epb.GetOrderRequest(user_id=ALICE, order_id=stop.order.order_id))
    assert got.order.status == pb.ORDER_STATUS_FILLED
    assert got.order.executed_quantity == "2"

    events: list[pb.EngineEvent] = []
    async for batch in stub.Subscribe(epb.SubscribeRequest(from_seq=1)):
        events += batch.events
        if events[-1].seq >= hit.seq:
            break
    kinds = [e.WhichOneof("body") for e in events]
    assert "trigger_placed" in kinds
    fired = kinds.index("trigger_fired")
    assert events[fired].trigger_fired.last_price == "95.00"
    assert events[fired + 1].order_accepted.order.order_id == stop.order.order_id


async def test_cancelling_a_bracket_leg_cancels_the_pair(engine: RunningEngine) -> None:
    stub = engine.stub
    await trade_at(engine, "100")
    await stub.PlaceOrder(limit(CAROL, SELL, "100", "2"))
    parent = await stub.PlaceOrder(
        limit(ALICE, BUY, "100", "2", take_profit_trigger_price="110", stop_loss_trigger_price="90")
    )
    assert parent.order.status == pb.ORDER_STATUS_FILLED
    legs = (await stub.GetOpenOrders(epb.GetOpenOrdersRequest(user_id=ALICE))).orders
    assert [(o.side, o.quantity, o.parent_order_id) for o in legs] == [
        (SELL, "2", parent.order.order_id)
    ] * 2
    assert legs[0].related_order_id == legs[1].order_id
    assert legs[0].take_profit_trigger_price == ""
    assert legs[0].trigger_price == "110.00"
    cancel = await stub.CancelOrder(
        epb.CancelOrderRequest(user_id=ALICE, order_id=legs[0].order_id)
    )
    assert cancel.order.status == pb.ORDER_STATUS_CANCELLED
    assert not (await stub.GetOpenOrders(epb.GetOpenOrdersRequest(user_id=ALICE))).orders
    bad = await stub.PlaceOrder(
        limit(ALICE, BUY, "100", "1", take_profit_trigger_price="90", stop_loss_trigger_price="95")
    )
    assert bad.code == pb.RESULT_CODE_INVALID_ORDER


async def stop_sell(engine: RunningEngine, trigger_price: str) -> None:
    stop = await engine.stub.PlaceOrder(
        epb.PlaceOrderRequest(
            user_id=ALICE, market="TATA_INR", side=SELL, type=MARKET, quantity="1",
            trigger_price=trigger_price,
        )
    )  # fmt: skip
    assert stop.order.status == pb.ORDER_STATUS_TRIGGER_PENDING, stop.message


async def test_a_reply_counts_the_fills_of_the_triggers_it_fired_against_it(
    engine: RunningEngine,
) -> None:
    """Bob's buy takes Carol's 1 and rests the rest; that trade fires Alice's sell stops,
    whose orders take from his rest in the same command. His reply must tell those fills
    too, as his OrderClosed and later queries do (a chaos run found it acknowledged
    Filled with only the taker's part executed)."""
    stub = engine.stub
    await trade_at(engine, "100")
    fields = ("status", "executed_quantity", "executed_quote_quantity", "fees_paid", "locked")
    for price, stops, quantity, status in (
        ("101", 2, "3", pb.ORDER_STATUS_FILLED),
        ("102", 1, "3", pb.ORDER_STATUS_PARTIALLY_FILLED),
    ):
        for _ in range(stops):
            await stop_sell(engine, price)
        await stub.PlaceOrder(limit(CAROL, SELL, price, "1"))
        hit = await stub.PlaceOrder(limit(BOB, BUY, price, quantity))
        assert hit.code == pb.RESULT_CODE_OK, hit.message
        assert (hit.order.status, hit.order.executed_quantity) == (status, str(1 + stops))
        assert [(f.quantity, f.maker_order_id == hit.order.order_id) for f in hit.fills] == [
            ("1", False)
        ] + [("1", True)] * stops
        got = await stub.GetOrder(epb.GetOrderRequest(user_id=BOB, order_id=hit.order.order_id))
        assert [getattr(hit.order, f) for f in fields] == [getattr(got.order, f) for f in fields]
