"""Cancels: one order or pending trigger by id or client id, or all of a user's.

A cancel finds a resting order first, then a pending trigger (cancelling a leg of a
take-profit / stop-loss pair cancels both). Cancel-all also leaves nothing pending: the
legs of the bracket orders it cancels are never created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine_svc.core.commands import CancelAllOrders, CancelOrder
from engine_svc.core.conditional import drop
from engine_svc.core.events import Event
from engine_svc.core.members import BY_USER, CANCELLED
from engine_svc.core.resting import close
from engine_svc.core.types import Code, Rejected

if TYPE_CHECKING:
    from engine_svc.core.engine import Engine


def cancel(e: Engine, c: CancelOrder, ts: int) -> list[Event]:
    user, symbol, order_id, client_id = c
    order = e.orders.get(order_id) if order_id else e.client_ids.get((user, client_id))
    if order is None or order.user != user or (symbol and order.market != symbol):
        return _cancel_trigger(e, c, ts)
    events: list[Event] = []
    e.books[order.market].remove(order)
    close(e, order, e.markets[order.market], CANCELLED, BY_USER, events, ts)
    return events


def cancel_all(e: Engine, c: CancelAllOrders, ts: int) -> list[Event]:
    if c.market:
        e.market(c.market)
    events: list[Event] = []
    for order in sorted(e.open_orders(c.user, c.market), key=lambda o: o.id):
        e.books[order.market].remove(order)
        close(e, order, e.markets[order.market], CANCELLED, BY_USER, events, ts)
    # Nothing is left pending: the legs of brackets just cancelled are never created.
    e.closed_parents = []
    for t in sorted(e.open_triggers(c.user, c.market), key=lambda t: t.id):
        drop(e, t, BY_USER, events, ts)
    return events


def _cancel_trigger(e: Engine, c: CancelOrder, ts: int) -> list[Event]:
    t = e.find_trigger(c.user, c.order_id, c.client_id)
    if t is None or (c.market and t.order.market != c.market):
        raise Rejected(Code.ORDER_NOT_FOUND, "no such open order")
    events: list[Event] = []
    sibling = t.sibling
    drop(e, t, BY_USER, events, ts)
    if sibling is not None:
        drop(e, sibling, BY_USER, events, ts)
    return events
