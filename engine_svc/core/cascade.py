"""Firing conditional orders: the cascade that follows every step that traded.

A trigger fires when its market's last trade price reaches it (triggers.py gives the
order); a bracket order that closed with fills spawns its take-profit and stop-loss legs,
which fire at once if the last price already reached them. What a fired order trades may
reach more triggers: the cascade runs until a step reaches none. Each trigger fires at
most once, since reaching it takes it out of the indexes; firing one leg of a pair
cancels the other first (ONE_CANCELS_OTHER).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from engine_svc.core.commands import PlaceOrder
from engine_svc.core.conditional import drop, new_order_id, pend, unpend
from engine_svc.core.entry import place
from engine_svc.core.events import Event, TradeExecuted, TriggerFailed, TriggerFired
from engine_svc.core.members import (
    BUY,
    BY_OCO,
    DONE,
    FIRING,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    PENDING,
    SELL,
    new,
)
from engine_svc.core.order import Order
from engine_svc.core.triggers import Trigger, TriggerBook, TriggerIndex
from engine_svc.core.types import ClientOrderId, Rejected

if TYPE_CHECKING:
    from engine_svc.core.engine import Engine

_TRADE: Final = TradeExecuted  # read from a C static, not the module dict per event


def cascade(e: Engine, symbol: str, events: list[Event], ts: int) -> None:
    """Fires every trigger the command's trades reached, then those the orders they
    became reach, until a step reaches none. The queue is made only once something was
    reached (most commands reach nothing)."""
    queue = _reach(e, symbol, events, events, None, ts)
    if queue is None:
        return
    # A list read in order, which firings append to: a deque's popleft and append are
    # Python method calls in compiled code, a list's are native.
    i = 0
    while i < len(queue):
        t = queue[i]
        i += 1
        if t.state is FIRING:  # else its other leg fired first
            _fire(e, t, events, queue, ts)


def _reach(
    e: Engine,
    symbol: str,
    step: list[Event],
    events: list[Event],
    queue: list[Trigger] | None,
    ts: int,
) -> list[Trigger] | None:
    """Queues what the trades of `step` reached, then the legs of brackets it closed;
    returns the queue, made if there was none and something was reached."""
    book = e.trigger_books.get(symbol)
    if book is not None and _may_reach(book, step):
        path = [ev.price for ev in step if type(ev) is _TRADE]
        if path:
            reached = book.crossed(path)
            if reached:
                if queue is None:
                    queue = []
                for t in reached:
                    unpend(e, t)
                    t.state = FIRING
                    queue.append(t)
    if e.closed_parents:
        parents, e.closed_parents = e.closed_parents, []
        if queue is None:
            queue = []
        for o in parents:
            _spawn_legs(e, o, events, queue, ts)
    return queue


def _may_reach(book: TriggerBook, step: list[Event]) -> bool:
    """Whether a trade of `step` reaches the nearest pending price of either side: most
    steps that trade reach none, and this tells it without a list or a call."""
    if isinstance(book, TriggerIndex):  # native attributes; through the protocol, a
        above, below = book.lowest_above, book.highest_below  # lookup each (~240)
    else:
        above, below = book.lowest_above, book.highest_below
    for ev in step:
        if type(ev) is _TRADE:
            price = ev.price
            if (above and price >= above) or price <= below:
                return True
    return False


def _spawn_legs(e: Engine, o: Order, events: list[Event], queue: list[Trigger], ts: int) -> None:
    """A closed bracket parent's take-profit and stop-loss, on the other side for what it
    filled. A buy's take-profit fires at or above its price, its stop-loss at or below
    (a sell's the other way); a leg the last price has already reached fires now."""
    b = o.bracket
    assert b is not None
    market = e.markets[o.market]
    buy = o.side is BUY
    side = SELL if buy else BUY
    legs: list[Trigger] = []
    for trigger, limit, take_profit in (
        (b.tp_trigger, b.tp_limit, True),
        (b.sl_trigger, b.sl_limit, False),
    ):
        if trigger:
            child = PlaceOrder(
                o.user, o.market, side, LIMIT if limit else MARKET, limit, o.filled, 0,
                GTC if limit else IOC, False, ClientOrderId(0), o.stp,
            )  # fmt: skip
            legs.append(
                Trigger(new_order_id(e), child, trigger, take_profit is buy, None, o.id, ts)
            )
    if len(legs) == 2:
        legs[0].pair(legs[1])
    for t in legs:
        pend(e, t, events, ts)
    last = market.last_price
    for t in legs:
        if t.state is PENDING and (last >= t.price if t.above else last <= t.price):
            e.trigger_books[o.market].remove(t)
            unpend(e, t)
            t.state = FIRING
            queue.append(t)


def _fire(e: Engine, t: Trigger, events: list[Event], queue: list[Trigger], ts: int) -> None:
    """Submits a reached trigger's order; its other leg is cancelled first. A refused
    one is kept a while for queries, with why."""
    t.state = DONE
    t.fired_at = ts
    o = t.order
    sibling = t.sibling
    if sibling is not None:
        t.sibling = None
        drop(e, sibling, BY_OCO, events, ts)
    e.seq += 1
    events.append(
        new(TriggerFired, (e.seq, ts, t.id, o.user, o.market, e.markets[o.market].last_price))
    )
    try:
        placed = place(e, o, ts, t.bracket, t)
    except Rejected as exc:
        t.failure_code, t.failure = int(exc.code), exc.message
        e.ended_triggers.add(t, ts)
        e.seq += 1
        events.append(TriggerFailed(e.seq, ts, t.id, o.user, o.market, int(exc.code), exc.message))
        return
    events += placed
    _reach(e, o.market, placed, events, queue, ts)
