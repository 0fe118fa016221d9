"""EngineService over real gRPC: orders, rejections as result codes, queries, streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from engine_svc import hub
from exchange.common.v1 import common_pb2 as pb
from exchange.engine.v1 import engine_pb2 as epb
from tests.engine.conftest import RunningEngine, deposit

BUY, SELL = pb.SIDE_BUY, pb.SIDE_SELL
LIMIT, MARKET = pb.ORDER_TYPE_LIMIT, pb.ORDER_TYPE_MARKET
ALICE, BOB = 1, 2


def limit(
    user: int, side: pb.Side.ValueType, price: str, qty: str, **kw: object
) -> epb.PlaceOrderRequest:
    return epb.PlaceOrderRequest(
        user_id=user,
        market="TATA_INR",
        side=side,
        type=LIMIT,
        price=price,
        quantity=qty,
        **kw,  # type: ignore[arg-type]
    )


async def test_alice_sells_bob_buys_through_the_book(engine: RunningEngine) -> None:
    stub = engine.stub
    await deposit(stub, ALICE, "TATA", "100")
    await deposit(stub, BOB, "INR", "100000")

    ask = await stub.PlaceOrder(limit(ALICE, SELL, "1600", "7"))
    assert ask.code == pb.RESULT_CODE_OK
    assert ask.order.status == pb.ORDER_STATUS_NEW
    assert ask.order.locked == "7"

    bid = await stub.PlaceOrder(limit(BOB, BUY, "1601", "10"))
    assert bid.order.status == pb.ORDER_STATUS_PARTIALLY_FILLED
    assert [(f.price, f.quantity, f.quote_quantity) for f in bid.fills] == [
        ("1600.00", "7", "11200.00")
    ]
    assert bid.order.executed_quantity == "7"
    # 3 remain at 1601: 4803.00 plus the maker fee (10 bps, cumulative rounding) still chargeable.
    assert bid.order.locked == "4807.81"

    depth = await stub.GetDepth(epb.GetDepthRequest(market="TATA_INR", limit=10))
    assert [(lv.price, lv.quantity) for lv in depth.bids] == [("1601.00", "3")]
    assert list(depth.asks) == []
    assert depth.seq == bid.seq

    balances = await stub.GetBalances(epb.GetBalancesRequest(user_id=BOB))
    by_asset = {b.asset: (b.available, b.locked) for b in balances.balances}
    # 100000 - 11200 - 22.40 taker fee - 4807.81 locked
    assert by_asset == {"INR": ("83969.79", "4807.81"), "TATA": ("7", "0")}


async def test_rejections_are_result_codes_and_change_nothing(engine: RunningEngine) -> None:
    stub = engine.stub
    await deposit(stub, BOB, "INR", "1000")
    before = await stub.GetStateHash(epb.GetStateHashRequest())
    cases = [
        (limit(BOB, BUY, "1600.001", "1"), pb.RESULT_CODE_INVALID_PRICE),
        (limit(BOB, BUY, "NaN", "1"), pb.RESULT_CODE_INVALID_PRICE),
        (limit(BOB, BUY, "100", "1.5"), pb.RESULT_CODE_INVALID_QUANTITY),
        (limit(BOB, BUY, "100", "-1"), pb.RESULT_CODE_INVALID_QUANTITY),
        (limit(BOB, BUY, "100", "1e3"), pb.RESULT_CODE_INVALID_QUANTITY),
        (limit(BOB, BUY, "1600", "1"), pb.RESULT_CODE_INSUFFICIENT_FUNDS),
        (
            epb.PlaceOrderRequest(
                user_id=BOB, market="NOPE_INR", side=BUY, type=LIMIT, price="1", quantity="1"
            ),
            pb.RESULT_CODE_UNKNOWN_MARKET,
        ),
    ]
    for request, code in cases:
        reply = await stub.PlaceOrder(request)
        assert reply.code == code, (request, reply)
        assert reply.message
    withdraw = await stub.Withdraw(epb.WithdrawRequest(user_id=BOB, asset="INR", amount="1000.01"))
    assert withdraw.code == pb.RESULT_CODE_INSUFFICIENT_FUNDS
    cancel = await stub.CancelOrder(epb.CancelOrderRequest(user_id=BOB, order_id=999))
    assert cancel.code == pb.RESULT_CODE_ORDER_NOT_FOUND
    after = await stub.GetStateHash(epb.GetStateHashRequest())
    assert after.state_hash == before.state_hash


async def test_other_users_orders_are_invisible(engine: RunningEngine) -> None:
    stub = engine.stub
    await deposit(stub, ALICE, "TATA", "10")
    placed = await stub.PlaceOrder(limit(ALICE, SELL, "1600", "1", client_order_id=7))
    oid = placed.order.order_id
    assert (await stub.GetOrder(epb.GetOrderRequest(user_id=BOB, order_id=oid))).code == (
        pb.RESULT_CODE_ORDER_NOT_FOUND
    )
    cancel = await stub.CancelOrder(epb.CancelOrderRequest(user_id=BOB, order_id=oid))
    assert cancel.code == pb.RESULT_CODE_ORDER_NOT_FOUND
    mine = await stub.GetOrder(epb.GetOrderRequest(user_id=ALICE, client_order_id=7))
    assert mine.order.order_id == oid
    cancelled = await stub.CancelOrder(epb.CancelOrderRequest(user_id=ALICE, client_order_id=7))
    assert cancelled.order.status == pb.ORDER_STATUS_CANCELLED
    assert cancelled.order.price == "1600.00"
    after = await stub.GetOrder(epb.GetOrderRequest(user_id=ALICE, order_id=oid))
    assert after.order.status == pb.ORDER_STATUS_CANCELLED


async def test_execute_stream_answers_every_command_of_a_batch(engine: RunningEngine) -> None:
    stub = engine.stub
    await deposit(stub, ALICE, "TATA", "1000")
    await deposit(stub, BOB, "INR", "10000000")
    commands = [
        epb.Command(
            request_id=i,
            place_order=limit(ALICE if i % 2 else BOB, SELL if i % 2 else BUY, "1500", "1"),
        )
        for i in range(1, 201)
    ]
    commands.append(
        epb.Command(
            request_id=999, cancel_order=epb.CancelOrderRequest(user_id=BOB, order_id=10**9)
        )
    )

    async def batches() -> AsyncIterator[epb.CommandBatch]:
        yield epb.CommandBatch(commands=commands[:100])
        yield epb.CommandBatch(commands=commands[100:])

    replies = [r async for batch in stub.Execute(batches()) for r in batch.replies]
    assert [r.request_id for r in replies] == [c.request_id for c in commands]
    placed = [r.place_order for r in replies[:-1]]
    assert all(p.code == pb.RESULT_CODE_OK for p in placed)
    assert sum(len(p.fills) for p in placed) == 100  # every buy met a resting sell
    assert replies[-1].cancel_order.code == pb.RESULT_CODE_ORDER_NOT_FOUND


async def test_subscribe_streams_every_event_in_order_then_live(engine: RunningEngine) -> None:
    stub = engine.stub
    await deposit(stub, ALICE, "TATA", "10")
    seen: list[pb.EngineEvent] = []

    async def follow() -> None:
        async for batch in stub.Subscribe(epb.SubscribeRequest(from_seq=0)):
            seen.extend(batch.events)
            if seen[-1].HasField("order_closed"):
                return

    task = asyncio.create_task(follow())
    await deposit(stub, BOB, "INR", "10000")
    await stub.PlaceOrder(limit(ALICE, SELL, "1600", "1"))
    await stub.PlaceOrder(limit(BOB, BUY, "1600", "1"))
    await asyncio.wait_for(task, 10)
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
    assert seen[0].HasField("asset_listed")
    # bob's buy: accepted, one trade, alice's ask closes filled, then bob's bid does.
    kinds = [e.WhichOneof("body") for e in seen[-4:]]
    assert kinds == ["order_accepted", "trade_executed", "order_closed", "order_closed"]
    trade = next(e for e in seen if e.HasField("trade_executed")).trade_executed.fill
    assert (trade.price, trade.quantity, trade.taker_side) == ("1600.00", "1", BUY)


async def test_subscribe_from_a_position_memory_dropped_replays_from_disk(
    engine: RunningEngine,
) -> None:
    stub = engine.stub
    engine.runtime.hub.capacity = 20  # keep only the newest few batches in memory
    await deposit(stub, ALICE, "TATA", "1000")
    await deposit(stub, BOB, "INR", "10000000")
    for i in range(60):
        side, user = (SELL, ALICE) if i % 2 else (BUY, BOB)
        assert (await stub.PlaceOrder(limit(user, side, "1600", "1"))).code == 0
    last = (await stub.GetStateHash(epb.GetStateHashRequest())).seq
    assert engine.runtime.hub.first_buffered > 30  # the start is only on disk now

    async def events_from(seq: int) -> list[pb.EngineEvent]:
        got: list[pb.EngineEvent] = []
        async for batch in stub.Subscribe(epb.SubscribeRequest(from_seq=seq)):
            got.extend(batch.events)
            if got[-1].seq >= last:
                return got
        return got

    everything = await asyncio.wait_for(events_from(1), 10)
    assert [e.seq for e in everything] == list(range(1, last + 1))
    middle = await asyncio.wait_for(events_from(25), 10)
    assert middle == everything[24:]


async def test_a_subscriber_behind_gets_the_buffered_batches_merged(
    engine: RunningEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = engine.stub
    await deposit(stub, ALICE, "TATA", "1000")
    await deposit(stub, BOB, "INR", "10000000")
    for i in range(40):  # one engine batch each: every call waits for its reply
        side, user = (SELL, ALICE) if i % 2 else (BUY, BOB)
        assert (await stub.PlaceOrder(limit(user, side, "1600", "1"))).code == 0
    last = (await stub.GetStateHash(epb.GetStateHashRequest())).seq

    async def messages_from(seq: int) -> list[list[pb.EngineEvent]]:
        got: list[list[pb.EngineEvent]] = []
        async for batch in stub.Subscribe(epb.SubscribeRequest(from_seq=seq)):
            got.append(list(batch.events))
            if got[-1][-1].seq >= last:
                return got
        return got

    # Everything is buffered before the subscriber comes: one message holds it all.
    (everything,) = await asyncio.wait_for(messages_from(1), 30)
    assert [e.seq for e in everything] == list(range(1, last + 1))
    # From inside a batch (a trade comes after its order's acceptance): the rest of it too.
    trade = next(e.seq for e in everything if e.HasField("trade_executed"))
    (rest,) = await asyncio.wait_for(messages_from(trade), 30)
    assert rest == everything[trade - 1 :]
    # A message stops short of the limit: more messages, the same events.
    monkeypatch.setattr(hub, "MERGE_EVENTS", 8)
    parts = await asyncio.wait_for(messages_from(1), 30)
    assert 1 < len(parts) < 40
    assert [e for part in parts for e in part] == everything


async def test_a_live_subscriber_that_stops_reading_gets_what_it_missed_in_one_message(
    engine: RunningEngine,
) -> None:
    stub = engine.stub
    await deposit(stub, ALICE, "TATA", "1000")
    await deposit(stub, BOB, "INR", "10000000")
    stream = engine.runtime.hub.subscribe(1)  # the servicer's source, read at our own pace
    try:
        first = epb.EventBatch.FromString(await anext(stream)).events
        assert [e.seq for e in first] == list(range(1, len(first) + 1))
        for i in range(20):  # published while the subscriber reads nothing
            side, user = (SELL, ALICE) if i % 2 else (BUY, BOB)
            assert (await stub.PlaceOrder(limit(user, side, "1600", "1"))).code == 0
        last = (await stub.GetStateHash(epb.GetStateHashRequest())).seq
        missed = epb.EventBatch.FromString(await anext(stream)).events
        assert [e.seq for e in missed] == list(range(first[-1].seq + 1, last + 1))
        assert sum(e.HasField("order_accepted") for e in missed) == 20
    finally:
        await stream.aclose()


async def test_export_balances_lists_every_account_with_its_seq(engine: RunningEngine) -> None:
    stub = engine.stub
    await deposit(stub, 1, "INR", "1000")
    await deposit(stub, 2, "TATA", "10")
    placed = await stub.PlaceOrder(
        epb.PlaceOrderRequest(
            user_id=1, market="TATA_INR", side=pb.SIDE_BUY, type=pb.ORDER_TYPE_LIMIT,
            price="100", quantity="3",
        )
    )  # fmt: skip
    assert placed.code == 0
    exported = await stub.ExportBalances(epb.ExportBalancesRequest())
    assert exported.seq == placed.seq
    assert [(b.user_id, b.asset, b.available, b.locked) for b in exported.balances] == [
        (1, "INR", "699.70", "300.30"),  # resting: 3 x 100 plus the 10 bps maker fee, locked
        (2, "TATA", "10", "0"),
    ]
