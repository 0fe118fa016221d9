"""What the maker's orders filled, and its profit and loss (from this process's start).

The maker learns of fills by comparing each order's executed amounts with what it saw last
(open orders every cycle; the final state of an order that left the book). An order first
seen after a restart starts from what it had executed then, so no fill is counted twice.

PnL is average-cost: a fill that grows the position moves its average price, one that
shrinks it realizes (price - average) x quantity; fees (paid in the quote asset) count
against realized PnL. Unrealized PnL is the position at the reference price.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from exchange.common.v1 import common_pb2 as cpb
from mm_svc.client_ids import Side
from mm_svc.units import ZERO, dec


@dataclass(frozen=True)
class Fill:
    market: str
    side: Side
    qty: Decimal  # base
    quote: Decimal  # quote, price x qty summed over the trades
    fee: Decimal  # quote

    @property
    def price(self) -> Decimal:
        return self.quote / self.qty


class FillTracker:
    def __init__(self) -> None:
        self._seen: dict[int, tuple[Decimal, Decimal, Decimal]] = {}

    def tracked(self) -> set[int]:
        return set(self._seen)

    def observe(self, order: cpb.Order, *, new: bool = False) -> Fill | None:
        """Record the order's executed amounts; the fill since the last look, if any. An
        order not seen before is taken as it is, unless `new` (placed just now)."""
        now = (dec(order.executed_quantity), dec(order.executed_quote_quantity),
               dec(order.fees_paid))  # fmt: skip
        before = self._seen.get(order.order_id)
        self._seen[order.order_id] = now
        if before is None:
            before = (ZERO, ZERO, ZERO) if new else now
        qty, quote, fee = (a - b for a, b in zip(now, before, strict=True))
        if qty <= 0:
            return None
        return Fill(order.market, order.side, qty, quote, fee)

    def forget(self, order_id: int) -> None:
        self._seen.pop(order_id, None)


@dataclass
class Inventory:
    """Position (base) and PnL (quote) of one market since the process started."""

    position: Decimal = ZERO
    average: Decimal = ZERO
    realized: Decimal = ZERO

    def apply(self, fill: Fill) -> None:
        signed = fill.qty if fill.side == cpb.SIDE_BUY else -fill.qty
        price = fill.price
        if self.position == 0 or (self.position > 0) == (signed > 0):
            total = self.position + signed
            self.average = (self.average * abs(self.position) + fill.quote) / abs(total)
            self.position = total
        else:
            closed = min(abs(signed), abs(self.position))
            direction = 1 if self.position > 0 else -1
            self.realized += closed * (price - self.average) * direction
            self.position += signed
            if self.position == 0:
                self.average = ZERO
            elif (self.position > 0) != (direction > 0):
                self.average = price  # flipped: the rest opened at this fill's price
        self.realized -= fill.fee

    def unrealized(self, mark: Decimal) -> Decimal:
        return self.position * (mark - self.average)
