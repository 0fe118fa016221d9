"""Core values <-> protobuf messages, at the service edge.

Integers become decimal strings at the scale of their asset. A reply is built
from the command's own events, so it tells the order's state right after that
command, whatever later commands did to it.
"""

from engine_svc import capital_rpc
from engine_svc.core.engine import ClosedOrder, Engine
from engine_svc.core.events import (
    AssetListed,
    Deposited,
    Event,
    MarketListed,
    MarketStatusChanged,
    OrderAccepted,
    OrderClosed,
    OrderRested,
    TradeExecuted,
    TriggerCancelled,
    TriggerFailed,
    TriggerFired,
    TriggerLimitSet,
    TriggerPlaced,
    Withdrawn,
)
from engine_svc.core.markets import Market
from engine_svc.core.order import Order
from engine_svc.core.triggers import Trigger
from engine_svc.core.types import OrderStatus, OrderType, Side
from exchange.common.v1 import common_pb2 as pb
from exchange.engine.v1 import engine_pb2 as epb
from tradekit.markets import MarketSpec
from tradekit.money import format_units


def market_to_proto(market: Market) -> pb.Market:
    message = _spec_to_proto(market.spec)
    message.status = int(market.status)  # type: ignore[assignment]
    return message


def spec_from_proto(m: pb.Market) -> MarketSpec:
    return MarketSpec(
        m.symbol, m.base, m.quote, m.tick_size, m.step_size, m.min_quantity, m.min_notional,
        m.max_quantity, m.max_price, m.maker_fee_bps, m.taker_fee_bps, m.max_triggers,
    )  # fmt: skip


def _spec_to_proto(s: MarketSpec) -> pb.Market:
    return pb.Market(
        symbol=s.symbol, base=s.base, quote=s.quote, tick_size=s.tick_size,
        step_size=s.step_size, min_quantity=s.min_quantity, min_notional=s.min_notional,
        max_quantity=s.max_quantity, max_price=s.max_price, maker_fee_bps=s.maker_fee_bps,
        taker_fee_bps=s.taker_fee_bps, status=pb.MARKET_STATUS_OPEN,
        max_triggers=s.max_triggers,
    )  # fmt: skip


def open_order_to_proto(o: Order, market: Market) -> pb.Order:
    status = OrderStatus.PARTIALLY_FILLED if o.filled else OrderStatus.NEW
    return _order_proto(o, market, status, 0, o.created, o.locked)


def closed_order_to_proto(c: ClosedOrder, market: Market) -> pb.Order:
    return _order_proto(c.order, market, c.status, int(c.reason), c.updated, 0)


def _order_proto(
    o: Order, market: Market, status: OrderStatus, reason: int, updated: int, locked: int
) -> pb.Order:
    buy = o.side == Side.BUY
    message = pb.Order(
        order_id=o.id,
        client_order_id=o.client_id,
        user_id=o.user,
        market=o.market,
        side=int(o.side),  # type: ignore[arg-type]
        type=int(o.type),  # type: ignore[arg-type]
        time_in_force=int(o.tif),  # type: ignore[arg-type]
        self_trade_prevention=int(o.stp),  # type: ignore[arg-type]
        post_only=o.post_only,
        price=market.fmt_price(o.price) if o.type == OrderType.LIMIT else "",
        quantity=market.fmt_qty(o.qty) if o.qty else "",
        quote_quantity=market.fmt_quote(o.quote_qty) if o.quote_qty else "",
        executed_quantity=market.fmt_qty(o.filled),
        executed_quote_quantity=market.fmt_quote(o.filled_quote),
        fees_paid=market.fmt_quote(o.fees),
        status=int(status),  # type: ignore[arg-type]
        close_reason=reason,  # type: ignore[arg-type]
        created_at_us=o.created,
        updated_at_us=updated,
        locked=market.fmt_quote(locked) if buy else market.fmt_qty(locked),
    )
    if o.bracket is not None:
        _write_bracket(message, market, *o.bracket)
    if o.fired is not None:  # it was a trigger order
        f = o.fired
        message.trigger_price, message.trigger_above = market.fmt_price(f.price), f.above
        message.parent_order_id, message.related_order_id = f.parent, f.related
        message.triggered_at_us = f.at
    return message


def trigger_to_proto(t: Trigger, market: Market) -> pb.Order:
    """A pending trigger as an order in status TRIGGER_PENDING; one that ended without
    becoming an order (`Trigger.ended`) as TRIGGER_FAILED or CANCELLED."""
    o = t.order
    b = t.bracket
    if not t.ended:
        status, reason = pb.ORDER_STATUS_TRIGGER_PENDING, 0
    elif t.failure_code:
        status, reason = pb.ORDER_STATUS_TRIGGER_FAILED, 0
    else:
        status, reason = pb.ORDER_STATUS_CANCELLED, int(t.reason or 0)
    message = pb.Order(
        order_id=t.id, client_order_id=o.client_id, user_id=o.user, market=o.market,
        side=int(o.side), type=int(o.type), time_in_force=int(o.tif),  # type: ignore[arg-type]
        self_trade_prevention=int(o.stp), post_only=o.post_only,  # type: ignore[arg-type]
        price=market.fmt_price(o.price) if o.price else "",
        quantity=market.fmt_qty(o.qty) if o.qty else "",
        quote_quantity=market.fmt_quote(o.quote_qty) if o.quote_qty else "",
        executed_quantity=market.fmt_qty(0), executed_quote_quantity=market.fmt_quote(0),
        fees_paid=market.fmt_quote(0), status=status, close_reason=reason,  # type: ignore[arg-type]
        created_at_us=t.created, updated_at_us=t.ended or t.created, locked=market.fmt_qty(0),
        trigger_price=market.fmt_price(t.price), trigger_above=t.above,
        parent_order_id=t.parent, related_order_id=t.related, triggered_at_us=t.fired_at,
        trigger_failure=(
            f"{pb.ResultCode.Name(t.failure_code)}: {t.failure}"  # type: ignore[arg-type]
            if t.failure_code else ""
        ),
    )  # fmt: skip
    if b is not None:
        _write_bracket(message, market, b.tp_trigger, b.tp_limit, b.sl_trigger, b.sl_limit)
    return message


def _write_bracket(
    o: pb.Order, market: Market, tp_trigger: int, tp_limit: int, sl_trigger: int, sl_limit: int
) -> None:
    for field, price in (
        ("take_profit_trigger_price", tp_trigger),
        ("take_profit_limit_price", tp_limit),
        ("stop_loss_trigger_price", sl_trigger),
        ("stop_loss_limit_price", sl_limit),
    ):
        if price:
            setattr(o, field, market.fmt_price(price))


def _write_trigger_placed(o: pb.Order, e: TriggerPlaced, market: Market) -> None:
    _write_terms(o, e, market)
    o.executed_quantity = market.fmt_qty(0)
    o.executed_quote_quantity = o.fees_paid = market.fmt_quote(0)
    o.status = pb.ORDER_STATUS_TRIGGER_PENDING
    o.locked = market.fmt_qty(0)
    o.trigger_price, o.trigger_above = market.fmt_price(e.trigger_price), e.above
    o.parent_order_id, o.related_order_id = e.parent, e.sibling
    _write_bracket(o, market, e.tp_trigger, e.tp_limit, e.sl_trigger, e.sl_limit)


def fill_to_proto(t: TradeExecuted, market: Market) -> pb.Fill:
    fill = pb.Fill()
    _write_fill(fill, t, market)
    return fill


def _write_fill(f: pb.Fill, t: TradeExecuted, market: Market) -> None:
    f.trade_id = t.trade_id
    f.market = t.market
    f.price = market.fmt_price(t.price)
    f.quantity = market.fmt_qty(t.qty)
    f.quote_quantity = market.fmt_quote(t.quote_qty)
    f.maker_order_id = t.maker_order
    f.maker_user_id = t.maker_user
    f.taker_order_id = t.taker_order
    f.taker_user_id = t.taker_user
    f.taker_side = int(t.taker_side)  # type: ignore[assignment]
    f.maker_fee = market.fmt_quote(t.maker_fee)
    f.taker_fee = market.fmt_quote(t.taker_fee)
    f.maker_client_order_id = t.maker_client_id
    f.taker_client_order_id = t.taker_client_id


def _write_terms(o: pb.Order, e: OrderAccepted | TriggerPlaced, market: Market) -> None:
    """The fields an order (or a trigger order) has from its acceptance on and never changes,
    into a fresh `o` (fields at their default are left unset: the same message, fewer calls).
    Both events open with the same fields; enum members are ints to protobuf, so they go in
    as they are."""
    (
        _, ts, order_id, user, symbol, side, type_, tif, stp, post_only, client_id, price, qty,
        quote_qty,
    ) = e[:14]  # fmt: skip
    o.order_id = order_id
    if client_id:
        o.client_order_id = client_id
    o.user_id = user
    o.market = symbol
    o.side = side  # type: ignore[assignment]
    o.type = type_  # type: ignore[assignment]
    o.time_in_force = tif  # type: ignore[assignment]
    o.self_trade_prevention = stp  # type: ignore[assignment]
    if post_only:
        o.post_only = True
    if price:
        o.price = format_units(price, market.quote.decimals)
    if qty:
        o.quantity = format_units(qty, market.base.decimals)
    if quote_qty:
        o.quote_quantity = format_units(quote_qty, market.quote.decimals)
    o.created_at_us = o.updated_at_us = ts


def write_placed_order(reply: epb.PlaceOrderReply, events: list[Event], engine: Engine) -> None:
    """Writes the new order's state right after its PlaceOrder command, and its fills,
    into a fresh `reply` in place (building sub-messages separately would copy them)."""
    accepted = events[0]
    if isinstance(accepted, TriggerPlaced):  # a trigger order: it waits
        _write_trigger_placed(reply.order, accepted, engine.markets[accepted.market])
        reply.seq = events[-1].seq
        return
    assert isinstance(accepted, OrderAccepted)
    market = engine.markets[accepted.market]
    order_id = accepted.order_id
    buy = accepted.side == Side.BUY
    filled = filled_quote = fees = 0
    locked = accepted.locked
    status = OrderStatus.NEW
    reason = 0
    if len(events) > 1:
        for e in events[1:]:
            # Only this order's own fills: as the taker, and as a maker once it rests, for
            # the triggers its trades fired trade in the same command, against it too.
            if isinstance(e, TradeExecuted) and order_id in (e.taker_order, e.maker_order):
                _write_fill(reply.fills.add(), e, market)
                fee = e.taker_fee if e.taker_order == order_id else e.maker_fee
                filled += e.qty
                filled_quote += e.quote_qty
                fees += fee
                locked -= e.quote_qty + fee if buy else e.qty
                status = OrderStatus.PARTIALLY_FILLED
            elif isinstance(e, OrderRested) and e.order_id == order_id:
                locked -= e.unlocked
            elif isinstance(e, OrderClosed) and e.order_id == order_id:
                status, reason, locked = e.status, int(e.reason), 0
    base, quote = market.base.decimals, market.quote.decimals
    o = reply.order
    _write_terms(o, accepted, market)
    o.executed_quantity = format_units(filled, base)
    o.executed_quote_quantity = format_units(filled_quote, quote)
    o.fees_paid = format_units(fees, quote)
    o.status = status  # type: ignore[assignment]
    if reason:
        o.close_reason = reason  # type: ignore[assignment]
    o.locked = format_units(locked, quote if buy else base)
    placed = engine.orders.get(order_id) or engine.recent_closed.get_order(order_id)
    if placed is not None and placed.bracket is not None:
        _write_bracket(o, market, *placed.bracket)
    reply.seq = events[-1].seq


def closed_order(e: OrderClosed, engine: Engine) -> pb.Order:
    """A cancelled order as it ended; detail comes from the engine's recent closed orders."""
    market = engine.markets[e.market]
    closed = engine.recent_closed.get(e.order_id)
    if closed is not None:
        return closed_order_to_proto(closed, market)
    return pb.Order(
        order_id=e.order_id,
        client_order_id=e.client_id,
        user_id=e.user,
        market=e.market,
        side=int(e.side),  # type: ignore[arg-type]
        executed_quantity=market.fmt_qty(e.filled),
        executed_quote_quantity=market.fmt_quote(e.filled_quote),
        status=int(e.status),  # type: ignore[arg-type]
        close_reason=int(e.reason),  # type: ignore[arg-type]
        updated_at_us=e.ts,
    )


def cancelled_trigger(e: TriggerCancelled, engine: Engine) -> pb.Order:
    """A cancelled trigger as it ended: it never became an order, so nothing filled."""
    market = engine.markets[e.market]
    ended = engine.ended_triggers.get(e.order_id)
    if ended is not None:
        return trigger_to_proto(ended, market)
    return pb.Order(
        order_id=e.order_id, user_id=e.user, market=e.market,
        executed_quantity=market.fmt_qty(0), executed_quote_quantity=market.fmt_quote(0),
        status=pb.ORDER_STATUS_CANCELLED, close_reason=int(e.reason),  # type: ignore[arg-type]
        updated_at_us=e.ts,
    )  # fmt: skip


def event_to_proto(e: Event, engine: Engine) -> pb.EngineEvent:
    """One engine event as the wire message; decimals come from the engine's tables."""
    out = pb.EngineEvent(seq=e.seq, ts_us=e.ts)
    if isinstance(e, TradeExecuted):
        _write_fill(out.trade_executed.fill, e, engine.markets[e.market])
    elif isinstance(e, OrderAccepted):
        market = engine.markets[e.market]
        body = out.order_accepted
        o = body.order
        _write_terms(o, e, market)
        o.executed_quantity = market.fmt_qty(0)
        o.executed_quote_quantity = market.fmt_quote(0)
        o.status = pb.ORDER_STATUS_NEW
        body.locked_asset = e.locked_asset
        body.locked = format_asset(engine, e.locked_asset, e.locked)
        o.locked = body.locked
    elif isinstance(e, OrderClosed):
        market = engine.markets[e.market]
        c = out.order_closed
        c.order_id, c.user_id, c.market, c.client_order_id = (
            e.order_id, e.user, e.market, e.client_id,
        )  # fmt: skip
        c.side, c.status, c.reason = int(e.side), int(e.status), int(e.reason)  # type: ignore[assignment]
        c.unlocked_asset = e.unlocked_asset
        c.unlocked = format_asset(engine, e.unlocked_asset, e.unlocked)
        c.executed_quantity = market.fmt_qty(e.filled)
        c.executed_quote_quantity = market.fmt_quote(e.filled_quote)
        if e.price:
            c.price = market.fmt_price(e.price)
        c.remaining_quantity = market.fmt_qty(e.remaining)
    elif isinstance(e, OrderRested):
        r = out.order_rested
        r.order_id, r.user_id, r.market = e.order_id, e.user, e.market
        r.unlocked_asset = e.unlocked_asset
        r.unlocked = format_asset(engine, e.unlocked_asset, e.unlocked)
    elif isinstance(e, Deposited):
        d = out.deposited
        d.user_id, d.asset, d.amount = e.user, e.asset, format_asset(engine, e.asset, e.amount)
    elif isinstance(e, Withdrawn):
        w = out.withdrawn
        w.user_id, w.asset, w.amount = e.user, e.asset, format_asset(engine, e.asset, e.amount)
    elif isinstance(e, AssetListed):
        out.asset_listed.asset.symbol = e.asset.symbol
        out.asset_listed.asset.decimals = e.asset.decimals
    elif isinstance(e, MarketListed):
        out.market_listed.market.CopyFrom(_spec_to_proto(e.spec))
    elif isinstance(e, MarketStatusChanged):
        out.market_status_changed.market = e.market
        out.market_status_changed.status = int(e.status)  # type: ignore[assignment]
    elif isinstance(e, TriggerLimitSet):
        out.trigger_limit_set.total = e.total
    elif isinstance(e, TriggerPlaced):
        _write_trigger_placed(out.trigger_placed.order, e, engine.markets[e.market])
    elif isinstance(e, TriggerFired):
        f = out.trigger_fired
        f.order_id, f.user_id, f.market = e.order_id, e.user, e.market
        f.last_price = engine.markets[e.market].fmt_price(e.last_price)
    elif isinstance(e, TriggerFailed):
        g = out.trigger_failed
        g.order_id, g.user_id, g.market, g.message = e.order_id, e.user, e.market, e.message
        g.code = e.code  # type: ignore[assignment]
    elif isinstance(e, TriggerCancelled):
        k = out.trigger_cancelled
        k.order_id, k.user_id, k.market = e.order_id, e.user, e.market
        k.reason = int(e.reason)  # type: ignore[assignment]
    else:
        capital_rpc.write_event(out, e, engine)
    return out


def format_asset(engine: Engine, asset: str, units: int) -> str:
    """`units` of `asset` as its decimal string."""
    return format_units(units, engine.assets[asset].decimals)


def balance_to_proto(engine: Engine, asset: str, available: int, locked: int) -> pb.Balance:
    return pb.Balance(
        asset=asset,
        available=format_asset(engine, asset, available),
        locked=format_asset(engine, asset, locked),
    )
