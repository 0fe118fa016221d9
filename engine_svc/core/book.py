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

_BUY = Side.BUY  # module constants: enum attribute lookups are slow on a hot path


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
    """Keeps the best level of each side at hand, so matching never searches for it."""

    def __init__(self) -> None:
        self._bids: SortedDict = SortedDict()  # -price -> Level
        self._asks: SortedDict = SortedDict()  # price -> Level
        self._best_bid: Level | None = None
        self._best_ask: Level | None = None
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, order: Order) -> None:
        price = order.price
        if order.side == _BUY:
            level = self._bids.get(-price)
            if level is None:
                level = self._bids[-price] = Level(price)
                if self._best_bid is None or price > self._best_bid.price:
                    self._best_bid = level
        else:
            level = self._asks.get(price)
            if level is None:
                level = self._asks[price] = Level(price)
                if self._best_ask is None or price < self._best_ask.price:
                    self._best_ask = level
        level.orders[order.id] = order
        level.total += order.remaining
        self._count += 1

    def remove(self, order: Order) -> None:
        """Takes the order off the book, with whatever it has remaining."""
        buy = order.side == _BUY
        levels = self._bids if buy else self._asks
        key = -order.price if buy else order.price
        level: Level = levels[key]
        del level.orders[order.id]
        level.total -= order.remaining
        self._count -= 1
        if level.orders:
            return
        del levels[key]
        if buy:
            if level is self._best_bid:
                self._best_bid = levels.peekitem(0)[1] if levels else None
        elif level is self._best_ask:
            self._best_ask = levels.peekitem(0)[1] if levels else None

    def reduce(self, order: Order, qty: int) -> None:
        """The order (still on the book) was filled by `qty`; its remaining is already lower."""
        if order.side == _BUY:
            self._bids[-order.price].total -= qty
        else:
            self._asks[order.price].total -= qty

    def best(self, side: Side) -> Order | None:
        level = self._best_bid if side == _BUY else self._best_ask
        return None if level is None else next(iter(level.orders.values()))

    def best_price(self, side: Side) -> int | None:
        level = self._best_bid if side == _BUY else self._best_ask
        return None if level is None else level.price

    def iter_side(self, side: Side) -> Iterator[Order]:
        levels = self._bids if side == _BUY else self._asks
        for level in levels.values():
            yield from level.orders.values()

    def depth(self, side: Side, limit: int) -> list[tuple[int, int]]:
        levels = self._bids if side == _BUY else self._asks
        values = levels.values()
        count = len(values) if limit <= 0 else min(limit, len(values))
        return [(level.price, level.total) for level in values[:count]]
