"""The price-time order book of one market.

Invariants: every level holds orders in arrival order; a level's `total` is the
sum of its orders' remaining quantities; no level is empty; the engine never
leaves the book crossed (best bid < best ask after every command).

Levels live in one SortedDict per side, keyed so that the best level comes first
(asks by price, bids by negated price); a level is an insertion-ordered dict of
orders, so the oldest order is first and a cancel is O(1).
"""

from collections.abc import Iterator
from typing import Protocol

from sortedcontainers import SortedDict

from engine_svc.core.order import Order
from engine_svc.core.types import OrderId, Side


class Book(Protocol):
    """What the engine needs of a book; `OrderBook` and `ReferenceBook` provide it."""

    def add(self, order: Order) -> None: ...
    def remove(self, order: Order) -> None: ...
    def reduce(self, order: Order, qty: int) -> None: ...
    def best(self, side: Side) -> Order | None: ...
    def best_price(self, side: Side) -> int | None: ...
    def iter_side(self, side: Side) -> Iterator[Order]: ...
    def depth(self, side: Side, limit: int) -> list[tuple[int, int]]: ...
    def __len__(self) -> int: ...


class Level:
    __slots__ = ("orders", "price", "total")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: dict[OrderId, Order] = {}
        self.total = 0


class OrderBook:
    def __init__(self) -> None:
        self._bids: SortedDict = SortedDict()  # -price -> Level
        self._asks: SortedDict = SortedDict()  # price -> Level
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _side(self, side: Side) -> tuple[SortedDict, int]:
        return (self._bids, -1) if side == Side.BUY else (self._asks, 1)

    def add(self, order: Order) -> None:
        levels, sign = self._side(order.side)
        key = sign * order.price
        level = levels.get(key)
        if level is None:
            level = levels[key] = Level(order.price)
        level.orders[order.id] = order
        level.total += order.remaining
        self._count += 1

    def remove(self, order: Order) -> None:
        """Takes the order off the book, with whatever it has remaining."""
        levels, sign = self._side(order.side)
        key = sign * order.price
        level = levels[key]
        del level.orders[order.id]
        level.total -= order.remaining
        if not level.orders:
            del levels[key]
        self._count -= 1

    def reduce(self, order: Order, qty: int) -> None:
        """The order (still on the book) was filled by `qty`; its remaining is already lower."""
        levels, sign = self._side(order.side)
        levels[sign * order.price].total -= qty

    def best(self, side: Side) -> Order | None:
        levels = self._bids if side == Side.BUY else self._asks
        if not levels:
            return None
        level: Level = levels.peekitem(0)[1]
        return next(iter(level.orders.values()))

    def best_price(self, side: Side) -> int | None:
        levels = self._bids if side == Side.BUY else self._asks
        if not levels:
            return None
        level: Level = levels.peekitem(0)[1]
        return level.price

    def iter_side(self, side: Side) -> Iterator[Order]:
        levels = self._bids if side == Side.BUY else self._asks
        for level in levels.values():
            yield from level.orders.values()

    def depth(self, side: Side, limit: int) -> list[tuple[int, int]]:
        levels = self._bids if side == Side.BUY else self._asks
        values = levels.values()
        count = len(values) if limit <= 0 else min(limit, len(values))
        return [(level.price, level.total) for level in values[:count]]
