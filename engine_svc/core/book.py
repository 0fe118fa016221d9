"""The price-time order book of one market.

Invariants: every level holds orders in arrival order; a level's `total` is the
sum of its orders' remaining quantities; no level is empty; each side's sorted
key list holds exactly the keys of its levels; the engine never leaves the book
crossed (best bid < best ask after every command).

A side is a dict of levels plus a plain sorted list of their keys, kept with
`bisect` (C code, no Python-level tree to walk). Keys sort so that the best level
comes last (bids by price, asks by negated price): new levels and emptied ones
are nearly always near the best, where inserting into or deleting from a list
moves few elements (one far from it moves the keys of the levels in between, a
memmove that stays under a microsecond for the thousands of levels of a book).
A level is an insertion-ordered dict of orders, so the oldest order is first and
a cancel is O(1).
"""

from bisect import bisect_left, insort
from collections.abc import Iterator
from itertools import islice
from typing import Final, Protocol

from engine_svc.core.order import Order
from engine_svc.core.types import OrderId, Side

_BUY: Final = Side.BUY  # a module constant, compared by identity: see engine.py


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
        self._bids: dict[int, Level] = {}  # price -> Level
        self._asks: dict[int, Level] = {}  # -price -> Level
        self._bid_keys: list[int] = []  # ascending: the best (highest) bid last
        self._ask_keys: list[int] = []  # ascending negated prices: the best (lowest) ask last
        self._best_bid: Level | None = None
        self._best_ask: Level | None = None
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, order: Order) -> None:
        price = order.price
        if order.side is _BUY:
            level = self._bids.get(price)
            if level is None:
                level = self._bids[price] = Level(price)
                insort(self._bid_keys, price)
                if self._best_bid is None or price > self._best_bid.price:
                    self._best_bid = level
        else:
            level = self._asks.get(-price)
            if level is None:
                level = self._asks[-price] = Level(price)
                insort(self._ask_keys, -price)
                if self._best_ask is None or price < self._best_ask.price:
                    self._best_ask = level
        level.orders[order.id] = order
        level.total += order.remaining
        self._count += 1

    def remove(self, order: Order) -> None:
        """Takes the order off the book, with whatever it has remaining."""
        buy = order.side is _BUY
        levels, keys = (self._bids, self._bid_keys) if buy else (self._asks, self._ask_keys)
        key = order.price if buy else -order.price
        level = levels[key]
        del level.orders[order.id]
        level.total -= order.remaining
        self._count -= 1
        if level.orders:
            return
        del levels[key]
        if keys[-1] == key:  # the best level: the usual case
            keys.pop()
            best = levels[keys[-1]] if keys else None
            if buy:
                self._best_bid = best
            else:
                self._best_ask = best
        else:
            del keys[bisect_left(keys, key)]

    def reduce(self, order: Order, qty: int) -> None:
        """The order (still on the book) was filled by `qty`; its remaining is already lower."""
        if order.side is _BUY:
            self._bids[order.price].total -= qty
        else:
            self._asks[-order.price].total -= qty

    def best(self, side: Side) -> Order | None:
        level = self._best_bid if side is _BUY else self._best_ask
        return None if level is None else next(iter(level.orders.values()))

    def best_price(self, side: Side) -> int | None:
        level = self._best_bid if side is _BUY else self._best_ask
        return None if level is None else level.price

    def _levels(self, side: Side) -> Iterator[Level]:
        """The side's levels, best first."""
        levels, keys = (
            (self._bids, self._bid_keys) if side is _BUY else (self._asks, self._ask_keys)
        )
        for key in reversed(keys):
            yield levels[key]

    def iter_side(self, side: Side) -> Iterator[Order]:
        for level in self._levels(side):
            yield from level.orders.values()

    def depth(self, side: Side, limit: int) -> list[tuple[int, int]]:
        levels = self._levels(side)
        if limit > 0:
            levels = islice(levels, limit)
        return [(level.price, level.total) for level in levels]
