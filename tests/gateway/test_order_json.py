"""An order view has the same fields whether or not the order has conditional parts."""

from __future__ import annotations

from exchange.common.v1 import common_pb2 as cpb
from gateway_svc.dialect import order_json


def test_plain_and_conditional_orders_have_the_same_fields() -> None:
    plain = order_json(cpb.Order(order_id=1, market="TATA_INR", price="1", quantity="2"))
    stop = order_json(
        cpb.Order(order_id=2, market="TATA_INR", quantity="2", stop_loss_trigger_price="0.9")
    )
    trigger = order_json(
        cpb.Order(order_id=3, market="TATA_INR", quantity="2", trigger_price="1.1")
    )
    assert plain.keys() == stop.keys() == trigger.keys()
    assert plain["triggerPrice"] is None and plain["stopLossTriggerBy"] is None
    assert stop["stopLossTriggerPrice"] == "0.9" and stop["stopLossTriggerBy"] == "LastPrice"
    assert trigger["triggerQuantity"] == "2" and trigger["triggerBy"] == "LastPrice"
