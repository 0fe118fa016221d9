"""Conditional orders in the projection: a trigger's row is inserted once, when placed, and
the order it becomes updates that row, even when its TriggerFired and OrderAccepted fall in
different batches (here: batches of one event)."""

from __future__ import annotations

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from ledger_svc.projection import ORDER_COLUMNS, Catalog, project
from tests.engine.conftest import RunningEngine, deposit
from tests.engine.test_grpc import BUY, MARKET, SELL, limit
from tests.ledger.events import all_events

STATUS = ORDER_COLUMNS.index("status")


async def test_a_fired_triggers_row_is_updated_not_inserted_again(engine: RunningEngine) -> None:
    stub = engine.stub
    for user in (1, 2, 3):
        await deposit(stub, user, "TATA", "100")
        await deposit(stub, user, "INR", "100000")
    await stub.PlaceOrder(limit(3, SELL, "100", "1"))
    await stub.PlaceOrder(limit(2, BUY, "100", "1"))
    stop = await stub.PlaceOrder(
        epb.PlaceOrderRequest(
            user_id=1, market="TATA_INR", side=SELL, type=MARKET, quantity="2",
            trigger_price="95",
        )
    )  # fmt: skip
    broke = await stub.PlaceOrder(
        epb.PlaceOrderRequest(
            user_id=1, market="TATA_INR", side=SELL, type=MARKET, quantity="500",
            trigger_price="96",
        )
    )  # fmt: skip
    await stub.PlaceOrder(limit(2, BUY, "90", "5"))
    await stub.PlaceOrder(limit(3, SELL, "95", "1"))
    await stub.PlaceOrder(limit(2, BUY, "95", "1"))
    events = await all_events(stub, engine.runtime.engine.seq)

    catalog = Catalog()
    status: dict[int, int] = {}
    inserted: list[int] = []
    for ev in events:  # one event per batch: every split there is
        batch = project([ev], catalog, ev.seq)
        for order_id, row in batch.new_orders.items():
            inserted.append(order_id)
            status[order_id] = row[STATUS]  # type: ignore[assignment]
        for order_id, delta in batch.order_deltas.items():
            if delta.status:
                status[order_id] = delta.status
    assert len(inserted) == len(set(inserted))
    assert status[stop.order.order_id] == cpb.ORDER_STATUS_FILLED
    assert status[broke.order.order_id] == cpb.ORDER_STATUS_TRIGGER_FAILED
    assert not catalog.fired
