"""Recently closed orders: kept for queries with how and when they closed, oldest forgotten."""

from engine_svc.core.accounts import Balance
from engine_svc.core.closed_orders import ClosedOrder, ClosedOrders
from engine_svc.core.order import Order
from engine_svc.core.types import (
    ClientOrderId,
    CloseReason,
    OrderId,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    UserId,
)
from tests.engine.core.driver import Exchange


def an_order(order_id: int) -> Order:
    return Order(
        OrderId(order_id), UserId(1), "TATA_INR", Side.BUY, OrderType.LIMIT, TimeInForce.GTC,
        SelfTradePrevention.REJECT_TAKER, False, ClientOrderId(0), 10_000, 1, 0, 0, Balance(),
        Balance(),
    )  # fmt: skip


def test_filled_and_cancelled_orders_are_kept_with_how_and_when_they_closed(ex: Exchange) -> None:
    ex.deposit("alice", "10", "TATA")
    ex.deposit("bob", "10000", "INR")
    ask = ex.sell("alice", "1", at="100")
    ex.buy("bob", "1", at="100")
    filled_at = ex.ts
    bid = ex.buy("bob", "1", at="90")
    assert ex.engine.recent_closed.get(bid.order_id) is None  # still open
    ex.cancel("bob", bid.order_id)

    filled = ex.engine.recent_closed.get(ask.order_id)
    cancelled = ex.engine.recent_closed.get(bid.order_id)

    assert filled is not None
    assert cancelled is not None
    assert (filled.order.id, filled.order.filled) == (ask.order_id, 1)
    assert filled == ClosedOrder(filled.order, OrderStatus.FILLED, CloseReason.FILLED, filled_at)
    assert (cancelled.status, cancelled.reason, cancelled.updated) == (
        OrderStatus.CANCELLED,
        CloseReason.USER_CANCELLED,
        ex.ts,
    )
    assert ex.engine.find_order(UserId(2), bid.order_id, ClientOrderId(0)) is cancelled.order


def test_the_oldest_closed_orders_are_forgotten_first() -> None:
    closed = ClosedOrders(capacity=2)
    for order_id in (1, 2, 3):
        closed.add(an_order(order_id), OrderStatus.CANCELLED, CloseReason.USER_CANCELLED, order_id)

    assert closed.get(OrderId(1)) is None
    kept = [closed.get(OrderId(i)) for i in (2, 3)]
    assert [(c.order.id, c.updated) for c in kept if c is not None] == [(2, 2), (3, 3)]
    assert len(closed) == 2

    closed.clear()
    assert closed.get(OrderId(3)) is None
    assert len(closed) == 0
