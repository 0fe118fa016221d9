"""The rolling 24h ticker from a market's trades (stream_svc.candles)."""

from __future__ import annotations

from stream_svc.candles import MarketCandles
from tradekit.candles import MINUTE_US

MINUTE = 1_000 * MINUTE_US  # the start of some minute


def test_a_trade_stamped_before_the_minute_turned_counts_after_it_turned() -> None:
    candles = MarketCandles({}, [])
    candles.trade(100, 2, 200, MINUTE + 30_000_000)
    turned = MINUTE + MINUTE_US + 1_000
    assert (bar := candles.ticker(turned)) is not None
    assert bar.volume == 2
    # The engine stamped this one 1 ms before the turn; the publisher applied it after
    # the ticker had been asked at the newer time.
    candles.trade(101, 3, 303, MINUTE + MINUTE_US - 1_000)
    assert (bar := candles.ticker(turned + 1_000)) is not None
    assert (bar.volume, bar.quote_volume, bar.trades, bar.close) == (5, 503, 2, 101)


def test_the_window_holds_a_day_of_minutes() -> None:
    candles = MarketCandles({}, [])
    candles.trade(100, 2, 200, MINUTE)
    candles.trade(110, 1, 110, MINUTE + 1439 * MINUTE_US)
    assert (bar := candles.ticker(MINUTE + 1439 * MINUTE_US)) is not None
    assert (bar.open, bar.close, bar.volume, bar.trades) == (100, 110, 3, 2)
    assert (bar := candles.ticker(MINUTE + 1440 * MINUTE_US)) is not None
    assert (bar.open, bar.volume, bar.trades) == (110, 1, 1)
