"""Pending conditional orders of one market, indexed by trigger price.

A trigger fires when the market's last trade price reaches its price from the side it
was placed on: one that lay above the last price fires at a trade >= it, one below at a
trade <= it. `crossed(path)` takes the trade prices of one step (one order's matching,
in order) and removes and returns every trigger they reached, in firing order: by the
first trade that reached it, then (at the same trade) the ones above before the ones
below, each best price first in the direction of the move (above: lowest first, below:
highest first), then acceptance order (the order id).

Each direction is a plain sorted list of keys kept with `bisect`, sorted so that the
next trigger to fire is last: a step costs O(log n + fired), never a scan.
`ReferenceTriggers` (reference_book.py) is the naive twin the differential test checks
this against.
"""

from bisect import bisect_left, insort
from collections.abc import Iterator
from enum import IntEnum
from typing import NamedTuple, Protocol

from engine_svc.core.commands import Bracket, PlaceOrder
from engine_svc.core.types import CloseReason, OrderId


class TriggerState(IntEnum):
    PENDING = 1  # in its market's index
    FIRING = 2  # reached: waiting in this step's cascade to be submitted
    DONE = 3  # fired, failed or cancelled


class FiredTrigger(NamedTuple):
    """What the order a trigger became keeps of it, for queries (and snapshots)."""

    price: int
    above: bool
    parent: OrderId
    related: OrderId
    at: int  # engine time it fired, µs


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

    def add(self, trigger: Trigger) -> None: ...
    def remove(self, trigger: Trigger) -> None: ...
    def crossed(self, path: list[int]) -> list[Trigger]: ...
    def __iter__(self) -> Iterator[Trigger]: ...
    def __len__(self) -> int: ...


class TriggerIndex:
    def __init__(self) -> None:
        # above: keys (-price, -id), so the lowest price (then the oldest) is last;
        # below: keys (price, -id), so the highest price (then the oldest) is last.
        self._above: list[tuple[int, int]] = []
        self._below: list[tuple[int, int]] = []
        self._by_id: dict[int, Trigger] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Trigger]:
        return iter(self._by_id.values())

    @staticmethod
    def _key(t: Trigger) -> tuple[int, int]:
        return (-t.price if t.above else t.price, -t.id)

    def add(self, trigger: Trigger) -> None:
        insort(self._above if trigger.above else self._below, self._key(trigger))
        self._by_id[trigger.id] = trigger

    def remove(self, trigger: Trigger) -> None:
        keys = self._above if trigger.above else self._below
        del keys[bisect_left(keys, self._key(trigger))]
        del self._by_id[trigger.id]

    def crossed(self, path: list[int]) -> list[Trigger]:
        above, below, by_id = self._above, self._below, self._by_id
        if not (above or below):
            return []
        fired: list[Trigger] = []
        high = low = path[0]
        for price in path:
            high = price if price > high else high
            low = price if price < low else low
            while above and -above[-1][0] <= high:
                fired.append(by_id.pop(-above.pop()[1]))
            while below and below[-1][0] >= low:
                fired.append(by_id.pop(-below.pop()[1]))
        return fired
