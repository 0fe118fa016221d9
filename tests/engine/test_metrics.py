"""The engine's per-command metrics, read from a real /metrics page after real calls:
commands by kind and result (refused while parsing, refused by the engine, applied),
sequencer batch sizes, and trades and volume per market."""

from __future__ import annotations

from collections.abc import AsyncIterator

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from tests.engine.conftest import RunningEngine, deposit
from tests.monitoring.scrape import scrape


def limit(user: int, side: cpb.Side.ValueType, price: str, qty: str) -> epb.PlaceOrderRequest:
    return epb.PlaceOrderRequest(
        user_id=user, market="TATA_INR", side=side, type=cpb.ORDER_TYPE_LIMIT,
        price=price, quantity=qty,
    )  # fmt: skip


async def test_commands_batches_and_trades_are_counted(engine: RunningEngine) -> None:
    stub = engine.stub
    await deposit(stub, 1, "INR", "1000")
    await deposit(stub, 2, "TATA", "10")
    bad_amount = await stub.Deposit(epb.DepositRequest(user_id=1, asset="INR", amount="1e3"))
    assert bad_amount.code == cpb.RESULT_CODE_INVALID_AMOUNT  # refused while parsing
    no_such_order = await stub.CancelOrder(epb.CancelOrderRequest(user_id=1, order_id=999))
    assert no_such_order.code == cpb.RESULT_CODE_ORDER_NOT_FOUND  # refused by the engine

    # One Execute batch: bob rests a sell of 5 at 10, alice buys 3 of it, then a buy
    # without a price (refused while parsing) and one alice cannot pay for.
    async def one_batch() -> AsyncIterator[epb.CommandBatch]:
        orders = [
            limit(2, cpb.SIDE_SELL, "10", "5"),
            limit(1, cpb.SIDE_BUY, "10", "3"),
            limit(1, cpb.SIDE_BUY, "", "1"),
            limit(1, cpb.SIDE_BUY, "10", "1000"),
        ]
        yield epb.CommandBatch(
            commands=[epb.Command(request_id=i, place_order=o) for i, o in enumerate(orders)]
        )

    [replies] = [r async for r in stub.Execute(one_batch())]
    assert [r.place_order.code for r in replies.replies] == [
        cpb.RESULT_CODE_OK,
        cpb.RESULT_CODE_OK,
        cpb.RESULT_CODE_INVALID_PRICE,
        cpb.RESULT_CODE_INSUFFICIENT_FUNDS,
    ]
    assert [r.request_id for r in replies.replies] == [0, 1, 2, 3]
    assert len(replies.replies[1].place_order.fills) == 1

    page = await scrape(engine.runtime.registry)

    def commands(command: str, result: str) -> float | None:
        return page.value("engine_commands_total", command=command, result=result)

    assert commands("deposit", "ok") == 2
    assert commands("deposit", "invalid_amount") == 1
    assert commands("cancel_order", "order_not_found") == 1
    assert commands("cancel_order", "ok") == 0
    assert commands("place_order", "ok") == 2
    assert commands("place_order", "invalid_price") == 1
    assert commands("place_order", "insufficient_funds") == 1
    assert commands("add_market", "ok") == len(engine.runtime.engine.markets)

    # Every command that reached the sequencer is in exactly one batch; the three
    # orders of the Execute batch that parsed went in together.
    batches = engine.runtime.sequencer.batches
    assert page.value("engine_sequencer_batch_commands_count") == batches
    reached = sum(engine.runtime.sequencer.commands.values()) - 2  # less the two parse refusals
    assert page.value("engine_sequencer_batch_commands_sum") == reached
    assert page.value("engine_sequencer_batch_commands_bucket", le="2.0") == batches - 1
    assert page.value("engine_sequencer_batch_commands_bucket", le="4.0") == batches

    assert page.value("engine_market_trades_total", market="TATA_INR") == 1
    assert page.value("engine_market_volume_total", market="TATA_INR") == 3
    assert page.value("engine_market_notional_total", market="TATA_INR") == 30
    assert page.value("engine_market_trades_total", market="BTC_USDT") == 0
