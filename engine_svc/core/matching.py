"""Matching and settlement: a taking order walks the opposite side of its book.

Fills happen at the resting order's price, best price first and in arrival order at each
price, until the order is filled, its limit is reached, self-trade prevention stops it, or
(a market buy) its lock is spent. Each fill moves the money at once (`_settle`): fees are
in the quote asset, added to what a buyer pays and taken from what a seller receives,
rounded up on each order's running total (so the fees of its fills sum to the ceiling of
the exact fee), and credited to FEE_ACCOUNT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from engine_svc.core.accounts import Balance
from engine_svc.core.book import Book
from engine_svc.core.events import Event, TradeExecuted
from engine_svc.core.markets import Market
from engine_svc.core.members import (
    BUY,
    BY_FILL,
    BY_FUNDS,
    BY_SELF_TRADE,
    CANCEL_BOTH,
    CANCEL_MAKER,
    CANCELLED,
    FILLED,
    LIMIT,
    SELL,
    new,
)
from engine_svc.core.order import Order
from engine_svc.core.resting import close
from engine_svc.core.types import FEE_ACCOUNT, CloseReason
from tradekit.money import ceil_div

if TYPE_CHECKING:
    from engine_svc.core.engine import Engine

BPS: Final = 10_000  # fees are in basis points of the notional


def match(
    e: Engine, o: Order, market: Market, book: Book, events: list[Event], ts: int
) -> CloseReason | None:
    """Takes liquidity for `o`. Returns why it stopped early, or None."""
    buy = o.side is BUY
    opposite = SELL if buy else BUY
    limit = o.price
    budgeted = o.type is not LIMIT and buy  # a market buy spends at most its lock
    user = o.user
    best = book.best
    fees = None
    while o.remaining:
        maker = best(opposite)
        if maker is None:
            return None
        price = maker.price
        if limit and (price > limit if buy else price < limit):
            return None
        if maker.user == user:
            if o.stp is CANCEL_MAKER or o.stp is CANCEL_BOTH:
                book.remove(maker)
                close(e, maker, market, CANCELLED, BY_SELF_TRADE, events, ts)
                if o.stp is CANCEL_MAKER:
                    continue
            return BY_SELF_TRADE
        available = maker.remaining
        qty = available if available < o.remaining else o.remaining
        if budgeted:
            qty = _affordable(o, market, price, qty)
            if not qty:
                return BY_FUNDS
        if fees is None:
            fees = e.accounts.balance(FEE_ACCOUNT, market.quote_symbol)
        if qty == available:
            # The maker leaves filled: off the book first, while its level still
            # counts what it had left.
            book.remove(maker)
            _settle(e, o, maker, market, price, qty, fees, events, ts)
            close(e, maker, market, FILLED, BY_FILL, events, ts)
        else:
            _settle(e, o, maker, market, price, qty, fees, events, ts)
            book.reduce(maker, qty)
    return None


def _affordable(o: Order, market: Market, price: int, qty: int) -> int:
    """The largest quantity <= qty a budgeted market buy can still pay for at `price`."""
    scale, step, bps = market.base_scale, market.step, market.taker_bps
    if o.quote_qty:
        most = (o.quote_qty - o.filled_quote) * scale // price
    else:
        # notional + ceil((fee_numer + notional * bps) / BPS) - fees <= locked  <=>
        # notional * (BPS + bps) <= (locked + fees) * BPS - fee_numer: exact, so a lock
        # of exactly the cost (FOK) buys all of it even when rounding makes a fill's fee 0.
        most = ((o.locked + o.fees) * BPS - o.fee_numer) * scale // (price * (BPS + bps))
    q = min(qty, most)
    q -= q % step
    while q > 0:
        notional = price * q // scale
        fee = ceil_div(o.fee_numer + notional * bps, BPS) - o.fees
        if notional + fee <= o.locked:
            break
        q -= step
    return q


def _settle(
    e: Engine,
    taker: Order,
    maker: Order,
    market: Market,
    price: int,
    qty: int,
    fees: Balance,
    events: list[Event],
    ts: int,
) -> None:
    notional = price * qty // market.base_scale
    taker.fee_numer += notional * market.taker_bps
    taker_fee = -(-taker.fee_numer // BPS) - taker.fees
    taker.fees += taker_fee
    maker.fee_numer += notional * market.maker_bps
    maker_fee = -(-maker.fee_numer // BPS) - maker.fees
    maker.fees += maker_fee
    if taker.side is BUY:
        buyer, seller, buyer_fee, seller_fee = taker, maker, taker_fee, maker_fee
    else:
        buyer, seller, buyer_fee, seller_fee = maker, taker, maker_fee, taker_fee
    cost = notional + buyer_fee
    buyer.locked -= cost
    buyer.spend.locked -= cost
    buyer.receive.available += qty
    seller.locked -= qty
    seller.spend.locked -= qty
    seller.receive.available += notional - seller_fee
    fees.available += taker_fee + maker_fee
    taker.remaining -= qty
    taker.filled += qty
    taker.filled_quote += notional
    maker.remaining -= qty
    maker.filled += qty
    maker.filled_quote += notional
    market.trades += 1
    market.traded_qty += qty
    market.traded_quote += notional
    market.last_price = price
    e.seq = seq = e.seq + 1
    trade_id = e.next_trade_id
    e.next_trade_id = trade_id + 1  # type: ignore[assignment]  # see Engine.__init__
    events.append(
        new(TradeExecuted, (
            seq, ts, trade_id, taker.market, price, qty, notional, maker.id,
            maker.user, taker.id, taker.user, taker.side, maker_fee, taker_fee,
            maker.client_id, taker.client_id,
        ))
    )  # fmt: skip
