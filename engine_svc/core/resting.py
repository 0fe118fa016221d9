"""Resting orders: how an order joins its book and the engine's indexes, and how it ends.

An order is in `orders`, `user_orders` (and `client_ids` when it has a client id) exactly
while it rests on its book. `close` unlocks all the order still holds, so an ended order
locks nothing, and remembers it among the recently closed for GetOrder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine_svc.core.book import Book
from engine_svc.core.events import Event, OrderClosed
from engine_svc.core.markets import Market
from engine_svc.core.members import BUY, new
from engine_svc.core.order import Order
from engine_svc.core.types import CloseReason, OrderStatus

if TYPE_CHECKING:
    from engine_svc.core.engine import Engine


def enter(e: Engine, o: Order, book: Book) -> None:
    book.add(o)
    e.orders[o.id] = o
    per_user = e.user_orders.get(o.user)
    if per_user is None:  # kept when empty: a user's next order needs it again
        per_user = e.user_orders[o.user] = {}
    per_user[o.id] = o
    if o.client_id:
        e.client_ids[(o.user, o.client_id)] = o


def close(
    e: Engine,
    o: Order,
    market: Market,
    status: OrderStatus,
    reason: CloseReason,
    events: list[Event],
    ts: int,
    resting: bool = True,
) -> None:
    """Ends the order (already off the book) and unlocks what it still holds."""
    unlocked = o.locked
    if unlocked:
        o.locked = 0
        spend = o.spend
        spend.locked -= unlocked
        spend.available += unlocked
    order_id, user, side = o.id, o.user, o.side
    if resting:
        del e.orders[order_id]
        del e.user_orders[user][order_id]
        if o.client_id:
            del e.client_ids[(user, o.client_id)]
    e.recent_closed.add(o, status, reason, ts)
    if o.bracket is not None and o.filled:
        e.closed_parents.append(o)
    e.seq = seq = e.seq + 1
    events.append(
        new(OrderClosed, (
            seq, ts, order_id, user, o.market, side, status, reason,
            market.quote_symbol if side is BUY else market.base_symbol, unlocked,
            o.filled, o.filled_quote, o.client_id, o.price, 0 if o.quote_qty else o.remaining,
        ))
    )  # fmt: skip
