"""A market's rules in exact decimals: ticks, steps, minimums, and what an order locks.

Prices and quantities here are `Decimal`s, never floats; they reach the engine as decimal
strings already on the market's tick and step, so the engine never has to round them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from exchange.common.v1 import common_pb2 as cpb
from mm_svc.client_ids import Side

BPS = Decimal(10_000)
ZERO = Decimal(0)


def fmt(value: Decimal) -> str:
    """Plain notation, as the engine wants it ("0.0010", never "1E-3")."""
    return format(value, "f")


def dec(text: str) -> Decimal:
    """A decimal string of the engine ("" is zero, as in an order without a price)."""
    return Decimal(text) if text else ZERO


@dataclass(frozen=True)
class MarketRules:
    symbol: str
    base: str
    quote: str
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    min_notional: Decimal
    max_qty: Decimal
    max_price: Decimal
    maker_fee_bps: int
    quote_unit: Decimal  # the quote asset's smallest unit, e.g. 0.01 for INR

    @classmethod
    def from_proto(cls, market: cpb.Market, decimals: Mapping[str, int]) -> MarketRules:
        return cls(
            symbol=market.symbol,
            base=market.base,
            quote=market.quote,
            tick=Decimal(market.tick_size),
            step=Decimal(market.step_size),
            min_qty=Decimal(market.min_quantity),
            min_notional=Decimal(market.min_notional),
            max_qty=Decimal(market.max_quantity),
            max_price=Decimal(market.max_price),
            maker_fee_bps=market.maker_fee_bps,
            quote_unit=Decimal(1).scaleb(-decimals[market.quote]),
        )

    def price_down(self, price: Decimal) -> Decimal:
        return (price / self.tick).to_integral_value(ROUND_FLOOR) * self.tick

    def price_up(self, price: Decimal) -> Decimal:
        return (price / self.tick).to_integral_value(ROUND_CEILING) * self.tick

    def qty_down(self, qty: Decimal) -> Decimal:
        return (qty / self.step).to_integral_value(ROUND_FLOOR) * self.step

    def notional(self, price: Decimal, qty: Decimal) -> Decimal:
        """price x quantity in the quote asset, rounded down as the engine does."""
        return (price * qty).quantize(self.quote_unit, ROUND_FLOOR)

    def lock(self, side: Side, price: Decimal, qty: Decimal) -> Decimal:
        """What a resting limit order locks: the base it sells, or the quote it pays plus
        the maker fee on it (rounded up, as the engine charges it)."""
        if side == cpb.SIDE_SELL:
            return qty
        notional = self.notional(price, qty)
        fee = (notional * self.maker_fee_bps / BPS).quantize(self.quote_unit, ROUND_CEILING)
        return notional + fee

    def affordable(self, side: Side, price: Decimal, funds: Decimal) -> Decimal:
        """The largest quantity on the step whose lock at `price` fits in `funds`."""
        if side == cpb.SIDE_SELL:
            return self.qty_down(funds)
        qty = self.qty_down(funds * BPS / (price * (BPS + self.maker_fee_bps)))
        while qty > 0 and self.lock(side, price, qty) > funds:  # rounding of the fee
            qty -= self.step
        return qty

    def acceptable(self, price: Decimal, qty: Decimal) -> bool:
        """Whether the engine takes a limit order of this price and quantity."""
        return (
            0 < price <= self.max_price
            and self.min_qty <= qty <= self.max_qty
            and self.notional(price, qty) >= self.min_notional
        )
