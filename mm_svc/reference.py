"""Where the maker's reference price comes from, one source per market.

- `BookReference`: the market itself, without the maker's own quotes: the mid of the best
  bid and ask of everybody else, else the last price the maker traded at, else the last
  reference (at first the configured start price). Takers lifting the maker's asks thus
  move its reference up, and other makers' quotes pull it towards theirs.
- `RandomWalk`: a seeded walk for demos, one step per maker cycle, the same path for the
  same seed.
- `PriceReplay`: a recorded price series (CSV) replayed against the clock at some speed.
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from mm_svc.config import MarketConfig, PriceFile, WalkConfig
from mm_svc.units import BPS


@dataclass(frozen=True)
class BookView:
    """The market as others make it: their best prices, and the maker's last trade price."""

    best_bid: Decimal | None
    best_ask: Decimal | None
    last_trade: Decimal | None


class ReferenceSource(Protocol):
    def price(self, view: BookView) -> Decimal | None:
        """The reference price now; None when there is none (the market is not quoted)."""
        ...


class BookReference:
    def __init__(self, start: Decimal) -> None:
        self._last = start

    def price(self, view: BookView) -> Decimal:
        if view.best_bid is not None and view.best_ask is not None:
            self._last = (view.best_bid + view.best_ask) / 2
        elif view.last_trade is not None:
            self._last = view.last_trade
        return self._last


class RandomWalk:
    """Each call moves the price by (drift + volatility x z) basis points, z ~ N(0, 1) from a
    generator seeded once; the price never falls below `floor`."""

    def __init__(self, start: Decimal, walk: WalkConfig, floor: Decimal) -> None:
        self._price = start
        self._walk = walk
        self._floor = floor
        self._rng = random.Random(walk.seed)

    def price(self, view: BookView) -> Decimal:
        # The normal draw is a float; it only picks the step, rounded to 1e-6 before it
        # touches the (decimal) price.
        z = Decimal(f"{self._rng.gauss(0.0, 1.0):.6f}")
        move = (self._walk.drift_bps + self._walk.volatility_bps * z) / BPS
        self._price = max(self._floor, self._price * (1 + move))
        return self._price


class PriceReplay:
    """Replays `file.points` from the first one, `speed` seconds of the file per second of
    `clock`; after the last point it starts over when `loop`, else stays at the last price."""

    def __init__(self, file: PriceFile, clock: Callable[[], float] = time.monotonic) -> None:
        self._times = [when for when, _ in file.points]
        self._prices = [price for _, price in file.points]
        self._speed = file.speed
        self._loop = file.loop
        self._clock = clock
        self._started = clock()

    def price(self, view: BookView) -> Decimal:
        first, last = self._times[0], self._times[-1]
        elapsed = (self._clock() - self._started) * self._speed
        span = last - first
        if self._loop and span > 0:
            elapsed %= span
        index = bisect.bisect_right(self._times, first + elapsed) - 1
        return self._prices[max(index, 0)]


def source_for(market: MarketConfig, floor: Decimal) -> ReferenceSource:
    """The configured source of `market`; `floor` (its tick) bounds a walk from below."""
    if market.reference == "walk":
        assert market.walk is not None  # by config
        assert market.start_price is not None
        return RandomWalk(market.start_price, market.walk, floor)
    if market.reference == "file":
        assert market.price_file is not None  # by config
        return PriceReplay(market.price_file)
    assert market.start_price is not None  # by config
    return BookReference(market.start_price)
