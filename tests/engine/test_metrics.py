"""The engine's per-command metrics, read from a real /metrics page after real calls:
commands by kind and result (refused while parsing, refused by the engine, applied),
sequencer batch sizes, and trades and volume per market."""

from __future__ import annotations

from collections.abc import AsyncIterator

from engine_svc.metrics import EngineState
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


async def test_open_withdrawals_are_counted_with_the_age_of_the_oldest(
    engine: RunningEngine,
) -> None:
    """One withdrawal waits for custody, one (above the approval threshold) for an operator;
    the oldest's age runs from its request; completed or declined, they are no longer open."""
    stub, out = engine.stub, "0x" + "0b" * 20
    await deposit(stub, 1, "USDT", "50000")
    asked = []
    for quantity in ("100", "20000"):
        reply = await stub.RequestWithdrawal(
            epb.RequestWithdrawalRequest(
                user_id=1, asset="USDT", network="Ethereum", address=out, quantity=quantity
            )
        )
        assert reply.code == cpb.RESULT_CODE_OK, reply.message
        asked.append(reply.withdrawal)
    waiting, held = asked
    assert held.status == cpb.WITHDRAWAL_STATUS_PENDING_APPROVAL

    page = await scrape(engine.runtime.registry)
    for stage in ("approved", "pending_approval"):
        assert page.value("engine_withdrawals_open", stage=stage) == 1
        age = page.value("engine_withdrawal_oldest_open_seconds", stage=stage)
        assert age is not None
        assert 0 <= age < 600

    # Read as if 90 s after the second request: each stage's oldest has waited since its own.
    later = held.created_at_us + 90_000_000
    state = EngineState(engine.runtime.engine, engine.runtime.sequencer, clock=lambda: later)
    ages = {
        s.labels["stage"]: s.value
        for family in state.collect()
        if family.name == "engine_withdrawal_oldest_open_seconds"
        for s in family.samples
    }
    assert ages == {
        "approved": (later - waiting.created_at_us) / 1e6,
        "pending_approval": 90.0,
    }

    A = epb.WithdrawalAction
    for wid, action, tx in (
        (waiting.withdrawal_id, A.ACTION_COMPLETE, "sent1"),
        (held.withdrawal_id, A.ACTION_DECLINE, ""),
    ):
        done = await stub.DecideWithdrawal(
            epb.DecideWithdrawalRequest(withdrawal_id=wid, action=action, transaction_hash=tx)
        )
        assert done.code == cpb.RESULT_CODE_OK, done.message
    page = await scrape(engine.runtime.registry)
    for stage in ("approved", "pending_approval"):
        assert page.value("engine_withdrawals_open", stage=stage) == 0
        assert page.value("engine_withdrawal_oldest_open_seconds", stage=stage) == 0
