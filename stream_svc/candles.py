"""Open candles of every interval and the rolling 24h ticker of one market, from its trades.

Amounts are integers in the smallest units (price and quote volume in the quote asset's,
volume in the base asset's). The ticker covers whole minutes: the current minute and the
1439 before it; its aggregate of the full minutes is recomputed only when the minute
turns, so a trade costs O(intervals), not O(minutes in a day).
"""

from __future__ import annotations

from collections.abc import Iterable

from tradekit.candles import INTERVALS_S, MINUTE_US, Candle, bucket_start

WINDOW_MINUTES = 1440


def merge(bars: Iterable[Candle]) -> Candle | None:
    """One bar spanning `bars` (in time order), or None if there are none."""
    out: Candle | None = None
    for b in bars:
        if out is None:
            out = Candle(
                b.start_us, b.open, b.high, b.low, b.close, b.volume, b.quote_volume, b.trades
            )
            continue
        out.high = max(out.high, b.high)
        out.low = min(out.low, b.low)
        out.close = b.close
        out.volume += b.volume
        out.quote_volume += b.quote_volume
        out.trades += b.trades
    return out


class MarketCandles:
    def __init__(self, open_bars: dict[int, Candle], minutes: list[Candle]) -> None:
        """`open_bars`: interval (s) -> its current bar; `minutes`: the last day's 1m bars."""
        self.open = open_bars
        self.minutes = sorted(minutes, key=lambda b: b.start_us)
        self._full: Candle | None = None  # aggregate of the window's minutes before the current
        self._full_until = -1  # the current minute when `_full` was computed

    def trade(self, price: int, qty: int, quote: int, ts_us: int) -> None:
        for interval in INTERVALS_S:
            start = bucket_start(ts_us, interval)
            bar = self.open.get(interval)
            if bar is None or bar.start_us < start:
                self.open[interval] = Candle.first(start, price, qty, quote)
            elif bar.start_us == start:
                bar.add(price, qty, quote)
            # else: a trade older than the open bar cannot happen (engine time only grows)
        minute = self.open[60]
        if not self.minutes or self.minutes[-1].start_us != minute.start_us:
            self.minutes.append(minute)
        if minute.start_us < self._full_until:
            # A trade of a minute the aggregate already closed: the engine stamped it just
            # before the minute turned, and the ticker was asked at the clock's newer time.
            self._full_until = -1

    def ticker(self, now_us: int) -> Candle | None:
        """The last 24h as one bar (start = the window's start), None if no trade in it."""
        current = bucket_start(now_us, 60)
        if current != self._full_until:
            oldest = current - (WINDOW_MINUTES - 1) * MINUTE_US
            drop = 0
            while drop < len(self.minutes) and self.minutes[drop].start_us < oldest:
                drop += 1
            del self.minutes[:drop]
            self._full = merge(b for b in self.minutes if b.start_us < current)
            self._full_until = current
        last = self.minutes[-1] if self.minutes and self.minutes[-1].start_us >= current else None
        parts = [b for b in (self._full, last) if b is not None]
        bar = merge(parts)
        if bar is not None:
            bar.start_us = current - (WINDOW_MINUTES - 1) * MINUTE_US
        return bar
