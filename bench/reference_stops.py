"""Plain stop-limit orders beside `PriceTimeBook`, for the benchmark's trigger workload.

A stop waits until the last trade price reaches its trigger from the side it was placed
on (above the last price: a trade >= it; below: a trade <= it), then becomes a limit GTC
order at its trigger price: it takes what crosses and rests. After an order trades, the
stops its fills reached fire in a fixed order: by the first fill that reached them, the
ones above before the ones below at the same fill, nearest price first in the direction
of the move, then oldest first; the fills of each fired stop may reach more, which fire
after those already reached. Each stop fires once.

Like `PriceTimeBook`, it shares no code with `engine_svc.core`: it is what the engine's
cascade must agree with (`python -m engine_svc.bench --verify`) and the workload
generator's model of which stops are still pending.
"""

from collections import deque
from typing import NamedTuple

from sortedcontainers import SortedList

from bench.reference_book import Fill, PriceTimeBook


class Stop(NamedTuple):
    id: int
    buy: bool
    trigger: int  # also the limit price of the order it becomes
    qty: int


class StopBook:
    def __init__(self) -> None:
        self._above: SortedList = SortedList()  # (trigger, id): the next to fire first
        self._below: SortedList = SortedList()  # (-trigger, id)
        self._stops: dict[int, Stop] = {}
        self.last: int | None = None  # the last trade price
        self.fired: list[int] = []  # ids, in firing order

    def __len__(self) -> int:
        return len(self._stops)

    def place(self, stop: Stop) -> None:
        """Refuses a stop at the last price or before any trade, as the engine does."""
        if self.last is None or stop.trigger == self.last or stop.id in self._stops:
            raise ValueError(f"bad stop {stop}: last price {self.last}")
        self._stops[stop.id] = stop
        if stop.trigger > self.last:
            self._above.add((stop.trigger, stop.id))
        else:
            self._below.add((-stop.trigger, stop.id))

    def _reached(self, fills: list[Fill]) -> list[Stop]:
        reached: list[Stop] = []
        if not fills:
            return reached
        high = low = fills[0].price
        for fill in fills:
            high, low = max(high, fill.price), min(low, fill.price)
            while self._above and self._above[0][0] <= high:
                reached.append(self._stops.pop(self._above.pop(0)[1]))
            while self._below and -self._below[0][0] >= low:
                reached.append(self._stops.pop(self._below.pop(0)[1]))
        self.last = fills[-1].price
        return reached

    def after(self, book: PriceTimeBook, fills: list[Fill]) -> list[Fill]:
        """Fires what `fills` (one order's, just made in `book`) reached, and what those
        reach in turn; returns the fired stops' fills, in order."""
        queue = deque(self._reached(fills))
        cascade: list[Fill] = []
        while queue:
            stop = queue.popleft()
            self.fired.append(stop.id)
            taken = book.add(stop.id, stop.buy, stop.trigger, stop.qty)
            cascade += taken
            queue.extend(self._reached(taken))
        return cascade
