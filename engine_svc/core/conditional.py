"""Conditional orders: placing triggers and brackets, and keeping them indexed.

A trigger waits in its market's price index (triggers.py) and in the engine's indexes by
id, user and client id while PENDING; `cascade.py` fires it. An order with a bracket but
no trigger price is placed at once, its take-profit and stop-loss legs waiting for it to
close with fills. A client id is unique among open orders and pending triggers together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine_svc.core.commands import Bracket, PlaceConditional, PlaceOrder
from engine_svc.core.entry import check_limit, check_market_order, check_price, place
from engine_svc.core.events import Event, TriggerCancelled, TriggerPlaced
from engine_svc.core.markets import Market
from engine_svc.core.members import BUY, DONE, LIMIT, NO_BRACKET, NO_ID, OPEN, PENDING, new
from engine_svc.core.triggers import Trigger
from engine_svc.core.types import CloseReason, Code, OrderId, Rejected

if TYPE_CHECKING:
    from engine_svc.core.engine import Engine


def place_conditional(e: Engine, c: PlaceConditional, ts: int) -> list[Event]:
    o, trigger_price, bracket = c
    market = e.market(o.market)
    if market.status is not OPEN:
        raise Rejected(Code.MARKET_HALTED, f"market {o.market} is halted")
    if o.user <= 0:
        raise Rejected(Code.INVALID_USER, "orders need a user id > 0")
    if o.type is LIMIT:
        check_limit(o, market)
    else:
        check_market_order(o, market)
    key = (o.user, o.client_id)
    if o.client_id and (key in e.client_ids or key in e.trigger_client_ids):
        raise Rejected(Code.DUPLICATE_CLIENT_ID, f"client id {o.client_id} is already open")
    has_bracket = bracket != NO_BRACKET
    if has_bracket:
        _check_bracket(o, market, bracket)
    if not trigger_price:
        if not has_bracket:
            raise Rejected(
                Code.INVALID_ORDER, "a conditional order needs a trigger price or a bracket"
            )
        return place(e, o, ts, bracket)
    check_price(trigger_price, market, "trigger price")
    last = market.last_price
    if not last or trigger_price == last:
        raise Rejected(
            Code.TRIGGER_WOULD_FIRE,
            "trigger price equals the last price" if last else f"{o.market} has no trade yet",
        )
    mine = e.user_triggers.get(o.user)
    if (mine is not None and len(mine) >= e.max_triggers_total) or (
        e.trigger_counts.get(o.user, {}).get(o.market, 0) >= market.max_triggers
    ):
        raise Rejected(
            Code.TRIGGER_LIMIT,
            f"at most {market.max_triggers} pending triggers in {o.market} "
            f"and {e.max_triggers_total} in all",
        )
    t = Trigger(
        new_order_id(e), o, trigger_price, trigger_price > last,
        bracket if has_bracket else None, NO_ID, ts,
    )  # fmt: skip
    events: list[Event] = []
    pend(e, t, events, ts)
    return events


def _check_bracket(o: PlaceOrder, market: Market, b: Bracket) -> None:
    for what, price in (
        ("take-profit trigger price", b.tp_trigger),
        ("take-profit limit price", b.tp_limit),
        ("stop-loss trigger price", b.sl_trigger),
        ("stop-loss limit price", b.sl_limit),
    ):
        if price:
            check_price(price, market, what)
    if (b.tp_limit and not b.tp_trigger) or (b.sl_limit and not b.sl_trigger):
        raise Rejected(Code.INVALID_ORDER, "a leg's limit price needs its trigger price")
    if b.tp_trigger and b.sl_trigger:
        buy = o.side is BUY
        if b.tp_trigger <= b.sl_trigger if buy else b.tp_trigger >= b.sl_trigger:
            raise Rejected(
                Code.INVALID_ORDER,
                "take-profit must lie above stop-loss for a buy, below it for a sell",
            )


def new_order_id(e: Engine) -> OrderId:
    order_id = e.next_order_id
    e.next_order_id = order_id + 1  # type: ignore[assignment]  # see Engine.__init__
    return order_id


def index_trigger(e: Engine, t: Trigger) -> None:
    o = t.order
    e.trigger_books[o.market].add(t)
    e.triggers[t.id] = t
    per_user = e.user_triggers.get(o.user)
    if per_user is None:
        per_user = e.user_triggers[o.user] = {}
    per_user[t.id] = t
    counts = e.trigger_counts.get(o.user)
    if counts is None:
        counts = e.trigger_counts[o.user] = {}
    counts[o.market] = counts.get(o.market, 0) + 1
    if o.client_id:
        e.trigger_client_ids[(o.user, o.client_id)] = t


def pend(e: Engine, t: Trigger, events: list[Event], ts: int) -> None:
    index_trigger(e, t)
    o = t.order
    tp_trigger, tp_limit, sl_trigger, sl_limit = t.bracket or NO_BRACKET
    sibling = NO_ID if t.sibling is None else t.sibling.id
    e.seq += 1
    events.append(
        new(TriggerPlaced, (
            e.seq, ts, t.id, o.user, o.market, o.side, o.type, o.tif, o.stp, o.post_only,
            o.client_id, o.price, o.qty, o.quote_qty, t.price, t.above,
            tp_trigger, tp_limit, sl_trigger, sl_limit, t.parent, sibling,
        ))
    )  # fmt: skip


def unpend(e: Engine, t: Trigger) -> None:
    """Takes a trigger out of the id, user and client id indexes (not its price index)."""
    o = t.order
    del e.triggers[t.id]
    del e.user_triggers[o.user][t.id]
    # Per user, then market: a tuple key's build and hash were half of what this cost.
    counts = e.trigger_counts[o.user]
    left = counts[o.market] - 1
    if left:
        counts[o.market] = left
    elif len(counts) > 1:
        del counts[o.market]
    else:
        del e.trigger_counts[o.user]
    if o.client_id:
        del e.trigger_client_ids[(o.user, o.client_id)]


def drop(e: Engine, t: Trigger, reason: CloseReason, events: list[Event], ts: int) -> None:
    """Cancels a pending or reached trigger; it is kept a while for queries."""
    if t.state is PENDING:
        e.trigger_books[t.order.market].remove(t)
        unpend(e, t)
    t.state = DONE
    t.sibling = None
    t.reason = reason
    e.ended_triggers.add(t, ts)
    e.seq += 1
    events.append(TriggerCancelled(e.seq, ts, t.id, t.order.user, t.order.market, reason))
