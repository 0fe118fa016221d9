"""Which quotes a market should have, and which open orders to keep, cancel or add (pure).

Targets: level i of each side sits at center x (1 -/+ (spread/2 + i x spacing)) (bids
rounded down to the tick, asks up), where center is the reference shifted against the
position, by `skew_bps` at the maximum position. Level i's size is size x growth^i, at most
`max_order_size`. A bid never reaches the best ask of others, nor an ask their best bid,
so quotes do not take liquidity. Slots are taken bid 0, ask 0, bid 1, ask 1, ... up to
`max_open_orders`.

Limits, as invariants of a plan applied to the state it was made from:
- position + (bids open after the plan) <= max_position, and
  -position + (asks open after the plan) <= max_position, so fills can never carry the
  position beyond either bound; with no room left on a side, that side is not quoted;
- open orders <= max_open_orders; no order above max_order_size;
- a new order's lock fits in what is available (`funds`, shared by the markets of a cycle).

An open order is kept while it is within `requote_tolerance_bps` of its target, no larger
than the target size and at least `refill_below` of it; otherwise it is cancelled and its
slot quoted afresh. With `replace=False` every open order is kept and only empty slots are
filled: the maker does that after its cancels are done, on a fresh view of its orders.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from exchange.common.v1 import common_pb2 as cpb
from mm_svc.client_ids import Side, Slot
from mm_svc.config import MarketConfig
from mm_svc.units import BPS, ZERO, MarketRules

BUY, SELL = cpb.SIDE_BUY, cpb.SIDE_SELL


@dataclass(frozen=True)
class OpenQuote:
    """One of the maker's open orders in the market; `slot` is None for an order of its
    user that is not one of its quotes."""

    order_id: int
    side: Side
    price: Decimal
    remaining: Decimal
    slot: Slot | None


@dataclass(frozen=True)
class Quote:
    slot: Slot
    price: Decimal
    qty: Decimal


@dataclass(frozen=True)
class Cancel:
    order: OpenQuote
    reason: str  # for the requote log line


@dataclass(frozen=True)
class MarketState:
    reference: Decimal
    position: Decimal  # base held - inventory target
    others_bid: Decimal | None  # best prices of everybody but the maker
    others_ask: Decimal | None


@dataclass
class Plan:
    cancels: list[Cancel] = field(default_factory=list)
    places: list[Quote] = field(default_factory=list)
    kept: list[OpenQuote] = field(default_factory=list)


def targets(cfg: MarketConfig, rules: MarketRules, state: MarketState) -> dict[Slot, Quote]:
    """The quotes the market should have, best first, bid and ask alternating."""
    ratio = max(Decimal(-1), min(Decimal(1), state.position / cfg.max_position))
    center = state.reference * (1 - cfg.skew_bps * ratio / BPS)
    quotes: dict[Slot, Quote] = {}
    for level in range(cfg.levels):
        offset = (cfg.spread_bps / 2 + level * cfg.level_spacing_bps) / BPS
        qty = rules.qty_down(min(cfg.size * cfg.size_growth**level, cfg.max_order_size))
        bid = rules.price_down(center * (1 - offset))
        if state.others_ask is not None:
            bid = min(bid, state.others_ask - rules.tick)
        ask = rules.price_up(center * (1 + offset))
        if state.others_bid is not None:
            ask = max(ask, state.others_bid + rules.tick)
        for side, price in ((BUY, bid), (SELL, ask)):
            if rules.acceptable(price, qty) and len(quotes) < cfg.max_open_orders:
                quotes[Slot(side, level)] = Quote(Slot(side, level), price, qty)
    return quotes


def plan_market(
    cfg: MarketConfig,
    rules: MarketRules,
    state: MarketState,
    orders: Sequence[OpenQuote],
    funds: MutableMapping[str, Decimal],
    *,
    replace: bool,
) -> Plan:
    """What to cancel and place in one market; the new orders' locks are taken from `funds`."""
    wanted = targets(cfg, rules, state)
    room = {BUY: cfg.max_position - state.position, SELL: cfg.max_position + state.position}
    plan = Plan()

    def keep(order: OpenQuote) -> None:
        plan.kept.append(order)
        room[order.side] -= order.remaining

    in_slots: dict[Slot, OpenQuote] = {}
    for order in orders:
        if order.slot is not None and order.slot in wanted and order.slot not in in_slots:
            in_slots[order.slot] = order
        elif replace:
            why = "not a quote" if order.slot is None else "level not quoted"
            plan.cancels.append(Cancel(order, why))
        else:
            keep(order)

    # Open quotes, inner levels first: each kept one uses up room for the ones outside it.
    for slot, quote in wanted.items():
        quoted = in_slots.get(slot)
        if quoted is None:
            continue
        reason = _stale(cfg, quoted, quote.price, rules.qty_down(min(quote.qty, room[slot.side])))
        if replace and reason is not None:
            plan.cancels.append(Cancel(quoted, reason))
        else:
            keep(quoted)

    occupied = {order.slot for order in plan.kept}
    for slot, quote in wanted.items():
        if slot in occupied or len(plan.kept) + len(plan.places) >= cfg.max_open_orders:
            continue
        qty = rules.qty_down(min(quote.qty, room[slot.side]))
        asset = rules.quote if slot.side == BUY else rules.base
        available = funds.get(asset, ZERO)
        if rules.lock(slot.side, quote.price, qty) > available:
            qty = min(qty, rules.affordable(slot.side, quote.price, available))
        if qty <= 0 or not rules.acceptable(quote.price, qty):
            continue
        funds[asset] = available - rules.lock(slot.side, quote.price, qty)
        room[slot.side] -= qty
        plan.places.append(Quote(slot, quote.price, qty))
    return plan


def _stale(cfg: MarketConfig, order: OpenQuote, price: Decimal, size: Decimal) -> str | None:
    """Why an open quote no longer fits its target (price, size), or None if it does."""
    if size <= 0:
        return "no room on this side"
    if abs(order.price - price) * BPS > cfg.requote_tolerance_bps * price:
        return f"price {order.price} -> {price}"
    if order.remaining > size:
        return f"size {order.remaining} above {size}"
    if order.remaining < cfg.refill_below * size:
        return f"size {order.remaining} below {cfg.refill_below} x {size}"
    return None
