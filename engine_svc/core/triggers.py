"""Pending conditional orders of one market, indexed by trigger price.

A trigger fires when the market's last trade price reaches its price from the side it
was placed on: one that lay above the last price fires at a trade >= it, one below at a
trade <= it. `crossed(path)` takes the trade prices of one step (one order's matching,
in order) and removes and returns every trigger they reached, in firing order: by the
first trade that reached it, then (at the same trade) the ones above before the ones
below, each best price first in the direction of the move (above: lowest first, below:
highest first), then acceptance order (the order id).

Each direction is a dict of price levels plus a plain sorted list of their keys, kept
with `bisect` and sorted so that the next level to fire is last, as the order book keeps
its levels: a step costs O(log levels + fired), never a scan. A level is an
insertion-ordered dict of triggers, which is acceptance order since ids only grow (a
restore adds them by id). Triggers far outnumber their prices, so placing one nearly
always joins a level: a dict store, where a sorted list of one key per trigger shifted
half the list on every insert. The nearest pending price of each side (`lowest_above`,
`highest_below`) is kept too: a step whose trades all lie strictly between them reaches
nothing, which the cascade tells before it builds a path or calls `crossed`.
`ReferenceTriggers` (reference_book.py) is the naive twin the differential test checks
this against.
"""

from bisect import bisect_left, insort
from collections.abc import Iterator
from enum import IntEnum
from typing import Protocol

from engine_svc.core.commands import Bracket, PlaceOrder
from engine_svc.core.types import CloseReason, OrderId


class TriggerState(IntEnum):
    PENDING = 1  # in its market's index
    FIRING = 2  # reached: waiting in this step's cascade to be submitted
    DONE = 3  # fired, failed or cancelled


class FiredTrigger:
    """What the order a trigger became keeps of it, for queries (and snapshots). A plain
    class, which the compiled core builds natively: a NamedTuple, even built straight from
    a tuple, cost about 2,300 instructions a firing."""

    __slots__ = ("above", "at", "parent", "price", "related")

    def __init__(self, price: int, above: bool, parent: OrderId, related: OrderId, at: int) -> None:
        self.price = price
        self.above = above
        self.parent = parent
        self.related = related
        self.at = at  # engine time it fired, µs

    def fields(self) -> tuple[int, bool, OrderId, OrderId, int]:
        return (self.price, self.above, self.parent, self.related, self.at)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FiredTrigger) and self.fields() == other.fields()

    def __repr__(self) -> str:
        return "FiredTrigger(price={}, above={}, parent={}, related={}, at={})".format(
            *self.fields()
        )


class Trigger:
    """`order` is what gets submitted when it fires (with this trigger's id); `sibling` is
    the other leg of a take-profit / stop-loss pair while both exist, `related` its id for
    good. Once DONE without becoming an order, `ended` says when, and `reason` why it was
    cancelled or `failure_code` / `failure` why the order it became was refused."""

    __slots__ = (
        "above", "bracket", "created", "ended", "failure", "failure_code", "fired_at", "id",
        "order", "parent", "price", "reason", "related", "sibling", "state",
    )  # fmt: skip

    def __init__(
        self,
        trigger_id: OrderId,
        order: PlaceOrder,
        price: int,
        above: bool,
        bracket: Bracket | None,
        parent: OrderId,
        created: int,
    ) -> None:
        self.id = trigger_id
        self.order = order
        self.price = price
        self.above = above
        self.bracket = bracket
        self.parent = parent
        self.created = created
        self.sibling: Trigger | None = None
        self.related = OrderId(0)
        self.state = TriggerState.PENDING
        self.fired_at = 0
        self.ended = 0
        self.reason: CloseReason | None = None
        self.failure_code = 0
        self.failure = ""

    def pair(self, other: "Trigger") -> None:
        """Links two legs: one cancels the other."""
        self.sibling, other.sibling = other, self
        self.related, other.related = other.id, self.id

    def as_fired(self) -> FiredTrigger:
        return FiredTrigger(self.price, self.above, self.parent, self.related, self.fired_at)


class TriggerBook(Protocol):
    """What the engine needs of a market's pending triggers."""

    # The nearest pending prices, 0 for a side with none (prices are > 0): no trigger
    # fires while every trade lies strictly between them, which the cascade checks
    # before it builds a path or calls `crossed`.
    @property
    def lowest_above(self) -> int: ...
    @property
    def highest_below(self) -> int: ...

    def add(self, trigger: Trigger) -> None: ...
    def remove(self, trigger: Trigger) -> None: ...
    def crossed(self, path: list[int]) -> list[Trigger]: ...
    def __iter__(self) -> Iterator[Trigger]: ...
    def __len__(self) -> int: ...


class TriggerIndex:
    def __init__(self) -> None:
        # above: keys -price, so the lowest price is last; below: keys price, so the
        # highest price is last. Each key's level holds its triggers oldest first.
        self._above: list[int] = []
        self._below: list[int] = []
        self._above_levels: dict[int, dict[OrderId, Trigger]] = {}
        self._below_levels: dict[int, dict[OrderId, Trigger]] = {}
        self._count = 0
        # Kept whenever a side's last key changes, as plain attributes: the cascade reads
        # them natively after every step that traded (cascade._may_reach).
        self.lowest_above = 0
        self.highest_below = 0

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Trigger]:
        for levels in (self._above_levels, self._below_levels):
            for level in levels.values():
                yield from level.values()

    def add(self, trigger: Trigger) -> None:
        if trigger.above:
            keys, levels, key = self._above, self._above_levels, -trigger.price
        else:
            keys, levels, key = self._below, self._below_levels, trigger.price
        level = levels.get(key)
        if level is None:
            level = levels[key] = {}
            insort(keys, key)
            self._nearest()
        level[trigger.id] = trigger
        self._count += 1

    def remove(self, trigger: Trigger) -> None:
        if trigger.above:
            keys, levels, key = self._above, self._above_levels, -trigger.price
        else:
            keys, levels, key = self._below, self._below_levels, trigger.price
        level = levels[key]
        del level[trigger.id]
        if not level:
            del levels[key]
            del keys[bisect_left(keys, key)]
            self._nearest()
        self._count -= 1

    def crossed(self, path: list[int]) -> list[Trigger]:
        above, below = self._above, self._below
        if not (above or below):
            return []
        above_levels, below_levels = self._above_levels, self._below_levels
        fired: list[Trigger] = []
        high = low = path[0]
        for price in path:
            high = price if price > high else high
            low = price if price < low else low
            # Appended one by one: extending a list by a dict's values view is a generic
            # iteration in compiled code, a loop over .values() a native one.
            while above and -above[-1] <= high:
                for t in above_levels.pop(above.pop()).values():
                    fired.append(t)
            while below and below[-1] >= low:
                for t in below_levels.pop(below.pop()).values():
                    fired.append(t)
        if fired:
            self._count -= len(fired)
            self._nearest()
        return fired

    def _nearest(self) -> None:
        above, below = self._above, self._below
        self.lowest_above = -above[-1] if above else 0
        self.highest_below = below[-1] if below else 0
