"""Candles: the intervals, where each one starts, and the one accumulator of trades.

The ledger's projection (ledger_svc/projection.py) stores candles and the stream
(stream_svc/candles.py) keeps the open ones live; both fold trades into `Candle` with
`first` and `add`, so the two agree on every figure. Amounts are integers in the smallest
units: price and quote volume in the quote asset's, volume in the base asset's.
"""

from __future__ import annotations

from dataclasses import dataclass

INTERVALS_S = (60, 300, 900, 1800, 3600, 14_400, 86_400, 604_800)
MINUTE_US = 60_000_000
WEEK_OFFSET_US = 4 * 86_400_000_000  # 1970-01-05, the first Monday: weeks start on Mondays


def bucket_start(ts_us: int, interval_s: int) -> int:
    """Start of the candle containing `ts_us`; weeks start on Monday 00:00 UTC."""
    width = interval_s * 1_000_000
    offset = WEEK_OFFSET_US if interval_s == 604_800 else 0
    return (ts_us - offset) // width * width + offset


@dataclass(slots=True)
class Candle:
    """One interval's trades. The trade ids (0 when unknown, as in a candle read back from
    the ledger) let candles of one interval be merged whatever order they come in."""

    start_us: int
    open: int
    high: int
    low: int
    close: int
    volume: int = 0
    quote_volume: int = 0
    trades: int = 0
    first_trade_id: int = 0
    last_trade_id: int = 0

    @classmethod
    def first(cls, start_us: int, price: int, qty: int, quote: int, trade_id: int = 0) -> Candle:
        return cls(start_us, price, price, price, price, qty, quote, 1, trade_id, trade_id)

    def add(self, price: int, qty: int, quote: int, trade_id: int = 0) -> None:
        """A later trade of the same interval."""
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        self.close = price
        self.volume += qty
        self.quote_volume += quote
        self.trades += 1
        self.last_trade_id = trade_id
