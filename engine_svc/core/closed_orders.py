"""The orders that left the engine most recently, kept a while for queries, and the
triggers that ended without becoming one (cancelled, or fired and refused).

Invariant: each holds at most `capacity` orders (triggers), the most recently closed
ones, each with how and when it closed. History beyond that lives in the ledger.

A closed order is stored as itself (its `close_*` fields set) rather than wrapped in a
record: one object kept per closed order instead of two, which halves what the garbage
collector has to walk while the window fills. `get` builds the record for the reader.
"""

from collections import deque
from typing import NamedTuple

from engine_svc.core.order import Order
from engine_svc.core.triggers import Trigger
from engine_svc.core.types import CloseReason, OrderId, OrderStatus


class ClosedOrder(NamedTuple):
    """An order that left the engine, as a query sees it."""

    order: Order
    status: OrderStatus
    reason: CloseReason
    updated: int


class ClosedOrders:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._by_id: dict[OrderId, Order] = {}
        self._ids: deque[OrderId] = deque()  # oldest first: the eviction order

    def add(self, order: Order, status: OrderStatus, reason: CloseReason, ts: int) -> None:
        order.close_status = status
        order.close_reason = reason
        order.closed_at = ts
        self._by_id[order.id] = order
        ids = self._ids
        ids.append(order.id)
        if len(ids) > self.capacity:
            del self._by_id[ids.popleft()]

    def get(self, order_id: OrderId) -> ClosedOrder | None:
        o = self._by_id.get(order_id)
        return None if o is None else ClosedOrder(o, o.close_status, o.close_reason, o.closed_at)

    def get_order(self, order_id: OrderId) -> Order | None:
        return self._by_id.get(order_id)

    def clear(self) -> None:
        self._by_id.clear()
        self._ids.clear()

    def __len__(self) -> int:
        return len(self._by_id)


class EndedTriggers:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._by_id: dict[OrderId, Trigger] = {}
        self._ids: deque[OrderId] = deque()

    def add(self, t: Trigger, ts: int) -> None:
        t.ended = ts
        self._by_id[t.id] = t
        ids = self._ids
        ids.append(t.id)
        if len(ids) > self.capacity:
            del self._by_id[ids.popleft()]

    def get(self, order_id: OrderId) -> Trigger | None:
        return self._by_id.get(order_id)

    def __len__(self) -> int:
        return len(self._by_id)
