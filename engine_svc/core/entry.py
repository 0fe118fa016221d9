"""Order entry: the checks an order must pass, the funds it locks, and how it ends up.

`place` is the hot path: fields are unpacked once (a NamedTuple's attribute is a slow
lookup), and a limit order's checks and lock are worked out inline; the `check_*`
functions only run to say precisely why an order is refused. A buy locks its price x
quantity plus the largest fee it may be charged, a sell its quantity; a market order locks
what `_lock_for_market_order` works out. Then the order takes (`matching.match`), rests
(`resting.enter`, after `_rest_after_taking` returned what a taker's lock no longer needs)
or closes (`resting.close`). Nothing changes state before every check has passed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine_svc.core.book import Book
from engine_svc.core.commands import Bracket, PlaceOrder
from engine_svc.core.events import Event, OrderAccepted, OrderRested
from engine_svc.core.markets import Market
from engine_svc.core.matching import BPS, match
from engine_svc.core.members import (
    BUY,
    BY_FILL,
    BY_FUNDS,
    BY_NO_LIQUIDITY,
    BY_SELF_TRADE,
    CANCEL_MAKER,
    CANCELLED,
    EXPIRED,
    FILLED,
    FOK,
    GTC,
    LIMIT,
    OPEN,
    SELL,
    new,
)
from engine_svc.core.order import Order
from engine_svc.core.resting import close, enter
from engine_svc.core.triggers import Trigger
from engine_svc.core.types import Code, Rejected
from tradekit.money import MAX_UNITS, ceil_div, format_units

if TYPE_CHECKING:
    from engine_svc.core.engine import Engine


def place(
    e: Engine,
    c: PlaceOrder,
    ts: int,
    bracket: Bracket | None = None,
    fired: Trigger | None = None,
) -> list[Event]:
    """Places `c` now, with `bracket` if any; a fired trigger passes itself: the order
    keeps its id and what it was (`Order.fired`)."""
    user, symbol, side, type_, price, qty, quote_qty, tif, post_only, client_id, stp = c
    market = e.markets.get(symbol)
    if market is None:
        raise Rejected(Code.UNKNOWN_MARKET, f"unknown market {symbol[:40]!r}")
    if market.status is not OPEN:
        raise Rejected(Code.MARKET_HALTED, f"market {symbol} is halted")
    if user <= 0:
        raise Rejected(Code.INVALID_USER, "orders need a user id > 0")
    limit = type_ is LIMIT
    if not limit:
        check_market_order(c, market)
    elif (
        price % market.tick
        or not 0 < price <= market.max_price
        or qty % market.step
        or not market.min_qty <= qty <= market.max_qty  # min_qty >= step > 0
        or quote_qty
        or (post_only and tif is not GTC)
        or price * qty // market.base_scale < market.min_notional
    ):
        check_limit(c, market)  # raises with the precise reason
    if client_id and (
        (user, client_id) in e.client_ids or (user, client_id) in e.trigger_client_ids
    ):
        raise Rejected(Code.DUPLICATE_CLIENT_ID, f"client id {client_id} is already open")
    buy = side is BUY
    if buy:
        spend_asset, receive_asset = market.quote_symbol, market.base_symbol
    else:
        spend_asset, receive_asset = market.base_symbol, market.quote_symbol
    book = e.books[symbol]
    held = e.accounts.of_user(user)
    spend = held.get(spend_asset)
    available = 0 if spend is None else spend.available
    if limit:
        best = book.best_price(SELL if buy else BUY)
        takes = best is not None and (best <= price if buy else best >= price)
        if takes and post_only:
            raise Rejected(Code.POST_ONLY_WOULD_TAKE, "post-only order would take liquidity")
        if tif is FOK and _fillable(c, book) < qty:
            raise Rejected(Code.FOK_NOT_FILLABLE, "not enough liquidity to fill completely")
        if buy:
            # price x qty plus the largest fee it may be charged: the taker fee only if
            # it crosses now (once resting, it can only be a maker).
            notional = price * qty // market.base_scale
            bps = max(market.maker_bps, market.taker_bps) if takes else market.maker_bps
            lock = notional - (-notional * bps // BPS)  # + ceil(notional * bps / BPS)
        else:
            lock = qty
    else:
        lock, takes = _lock_for_market_order(c, market, book, available)
    if lock > available:
        decimals = e.assets[spend_asset].decimals
        required, held_text = format_units(lock, decimals), format_units(available, decimals)
        raise Rejected(
            Code.INSUFFICIENT_FUNDS,
            f"{spend_asset}: needs {required}, {held_text} available",
            {"asset": spend_asset, "required": required, "available": held_text},
        )

    # Every check passed: from here on the command changes state.
    receive = held.get(receive_asset)
    if spend is None or receive is None:
        spend = e.accounts.balance(user, spend_asset)
        receive = e.accounts.balance(user, receive_asset)
    if fired is None:
        order_id = e.next_order_id
        e.next_order_id = order_id + 1  # type: ignore[assignment]  # see Engine.__init__
    else:
        order_id = fired.id
    order = Order(
        order_id, user, symbol, side, type_, tif, stp, post_only, client_id, price, qty,
        quote_qty, ts, spend, receive,
    )  # fmt: skip
    if bracket is not None:
        order.bracket = bracket
    if fired is not None:
        order.fired = fired.as_fired()
    if quote_qty:
        order.remaining = MAX_UNITS  # bounded by the quote budget instead
    order.locked = lock
    spend.available -= lock
    spend.locked += lock
    e.seq = seq = e.seq + 1
    events: list[Event] = [
        new(OrderAccepted, (
            seq, ts, order_id, user, symbol, side, type_, tif, stp, post_only, client_id,
            price, qty, quote_qty, spend_asset, lock,
        ))
    ]  # fmt: skip
    if not takes:  # only a limit order rests without trying to take
        if tif is GTC:
            enter(e, order, book)
        else:
            close(e, order, market, EXPIRED, BY_NO_LIQUIDITY, events, ts, resting=False)
        return events
    stop = match(e, order, market, book, events, ts)
    if order.remaining == 0:
        close(e, order, market, FILLED, BY_FILL, events, ts, resting=False)
    elif stop is not None:
        status = CANCELLED if stop is BY_SELF_TRADE else EXPIRED
        if stop is BY_FUNDS and quote_qty and order.filled:
            status, stop = FILLED, BY_FILL  # the budget is spent
        close(e, order, market, status, stop, events, ts, resting=False)
    elif limit and tif is GTC:
        _rest_after_taking(e, order, market, book, events, ts)
    else:
        close(e, order, market, EXPIRED, BY_NO_LIQUIDITY, events, ts, resting=False)
    return events


def check_price(price: int, market: Market, what: str) -> None:
    if price <= 0 or price % market.tick or price > market.max_price:
        raise Rejected(
            Code.INVALID_PRICE,
            f"{what} must be a positive multiple of {market.spec.tick_size} "
            f"up to {market.spec.max_price}",
        )


def check_limit(c: PlaceOrder, market: Market) -> None:
    check_price(c.price, market, "price")
    qty = c.qty
    if qty <= 0 or qty % market.step or qty > market.max_qty or qty < market.min_qty:
        _check_qty(qty, market)  # raises with the precise reason
    if c.quote_qty:
        raise Rejected(Code.INVALID_ORDER, "quote quantity is for market orders")
    if c.post_only and c.tif is not GTC:
        raise Rejected(Code.INVALID_ORDER, "post-only orders are GTC")
    if c.price * c.qty // market.base_scale < market.min_notional:
        raise Rejected(
            Code.BELOW_MIN_NOTIONAL, f"price x quantity is below {market.spec.min_notional}"
        )


def check_market_order(c: PlaceOrder, market: Market) -> None:
    if c.price:
        raise Rejected(Code.INVALID_ORDER, "market orders take no price")
    if c.post_only or c.tif is GTC:
        raise Rejected(Code.INVALID_ORDER, "market orders are IOC or FOK")
    if bool(c.qty) == bool(c.quote_qty):
        raise Rejected(Code.INVALID_ORDER, "market orders need either quantity or quote quantity")
    if c.qty:
        _check_qty(c.qty, market)
        return
    if c.side is not BUY or c.tif is FOK:
        raise Rejected(Code.INVALID_ORDER, "quote quantity is for IOC market buys")
    if not 0 < c.quote_qty <= MAX_UNITS:
        raise Rejected(Code.INVALID_AMOUNT, "quote quantity must be positive")
    if c.quote_qty < market.min_notional:
        raise Rejected(
            Code.BELOW_MIN_NOTIONAL, f"quote quantity is below {market.spec.min_notional}"
        )


def _check_qty(qty: int, market: Market) -> None:
    if qty <= 0 or qty % market.step or qty > market.max_qty:
        raise Rejected(
            Code.INVALID_QUANTITY,
            f"quantity must be a positive multiple of {market.spec.step_size} "
            f"up to {market.spec.max_quantity}",
        )
    if qty < market.min_qty:
        raise Rejected(Code.BELOW_MIN_QUANTITY, f"quantity is below {market.spec.min_quantity}")


def _lock_for_market_order(
    c: PlaceOrder, market: Market, book: Book, available: int
) -> tuple[int, bool]:
    """What a market order must lock (it always tries to take), after the fill-or-kill
    check. A limit order's lock is worked out in `place`."""
    if c.side is not BUY:
        if c.tif is FOK and _fillable(c, book) < c.qty:
            raise Rejected(Code.FOK_NOT_FILLABLE, "not enough liquidity to fill completely")
        return c.qty, True
    if c.quote_qty:
        return c.quote_qty + ceil_div(c.quote_qty * market.taker_bps, BPS), True
    # A market buy by quantity locks what taking that quantity costs now, or
    # all it has; `match` then never spends more than the lock.
    cost = _cost_to_buy(c, market, book)
    if c.tif is FOK:
        if _fillable(c, book) < c.qty:
            raise Rejected(Code.FOK_NOT_FILLABLE, "not enough liquidity to fill completely")
        return cost, True
    if cost and not available:
        raise Rejected(Code.INSUFFICIENT_FUNDS, f"no {market.quote_symbol} available")
    return min(cost, available), True


def _takeable(c: PlaceOrder, book: Book) -> list[tuple[int, int]]:
    """(price, qty) the order could take now, in order, as `match` would find it."""
    buy = c.side is BUY
    taken: list[tuple[int, int]] = []
    need = c.qty
    for maker in book.iter_side(SELL if buy else BUY):
        if c.price and (maker.price > c.price if buy else maker.price < c.price):
            break
        if maker.user == c.user:
            if c.stp is CANCEL_MAKER:
                continue
            break
        qty = min(need, maker.remaining)
        taken.append((maker.price, qty))
        need -= qty
        if not need:
            break
    return taken


def _fillable(c: PlaceOrder, book: Book) -> int:
    return sum(qty for _, qty in _takeable(c, book))


def _cost_to_buy(c: PlaceOrder, market: Market, book: Book) -> int:
    notional = sum(market.notional(price, qty) for price, qty in _takeable(c, book))
    return notional + ceil_div(notional * market.taker_bps, BPS)


def _rest_after_taking(
    e: Engine, o: Order, market: Market, book: Book, events: list[Event], ts: int
) -> None:
    if o.side is BUY:
        # A buy that took liquidity locked for taker fees and its own price;
        # resting, it needs its price and the maker fee on what remains.
        notional = o.price * o.remaining // market.base_scale
        needed = notional + ceil_div(o.fee_numer + notional * market.maker_bps, BPS) - o.fees
        excess = o.locked - needed
        if excess:
            o.locked = needed
            o.spend.locked -= excess
            o.spend.available += excess
            e.seq += 1
            events.append(
                OrderRested(e.seq, ts, o.id, o.user, o.market, market.quote_symbol, excess)
            )
    enter(e, o, book)
