"""A deliberately naive order book and trigger index: the obviously correct twins of
`OrderBook` and `TriggerIndex`.

Each keeps plain lists in arrival order and answers every question by scanning and
sorting. The differential tests run the engine with both and require identical events.
"""

from collections.abc import Iterator

from engine_svc.core.order import Order
from engine_svc.core.triggers import Trigger
from engine_svc.core.types import Side


class ReferenceBook:
    def __init__(self) -> None:
        self._orders: dict[Side, list[Order]] = {Side.BUY: [], Side.SELL: []}

    def __len__(self) -> int:
        return sum(len(orders) for orders in self._orders.values())

    def _priority(self, side: Side) -> list[Order]:
        # Best price first; at one price, arrival order: the lists are in arrival order and
        # the sort is stable. (Not id order: a fired trigger keeps the id it was placed with.)
        if side == Side.BUY:
            return sorted(self._orders[side], key=lambda o: -o.price)
        return sorted(self._orders[side], key=lambda o: o.price)

    def add(self, order: Order) -> None:
        self._orders[order.side].append(order)

    def remove(self, order: Order) -> None:
        self._orders[order.side].remove(order)

    def reduce(self, order: Order, qty: int) -> None:
        pass  # levels are recomputed on every question

    def best(self, side: Side) -> Order | None:
        ranked = self._priority(side)
        return ranked[0] if ranked else None

    def best_price(self, side: Side) -> int | None:
        best = self.best(side)
        return None if best is None else best.price

    def iter_side(self, side: Side) -> Iterator[Order]:
        return iter(self._priority(side))

    def depth(self, side: Side, limit: int) -> list[tuple[int, int]]:
        levels: dict[int, int] = {}
        for order in self._priority(side):
            levels[order.price] = levels.get(order.price, 0) + order.remaining
        items = list(levels.items())
        return items if limit <= 0 else items[:limit]


class ReferenceTriggers:
    def __init__(self) -> None:
        self._triggers: list[Trigger] = []

    def __len__(self) -> int:
        return len(self._triggers)

    def __iter__(self) -> Iterator[Trigger]:
        return iter(list(self._triggers))

    @property
    def lowest_above(self) -> int:
        return min((t.price for t in self._triggers if t.above), default=0)

    @property
    def highest_below(self) -> int:
        return max((t.price for t in self._triggers if not t.above), default=0)

    def add(self, trigger: Trigger) -> None:
        self._triggers.append(trigger)

    def remove(self, trigger: Trigger) -> None:
        self._triggers.remove(trigger)

    def crossed(self, path: list[int]) -> list[Trigger]:
        """Every trigger some trade of `path` reached, by (first such trade, above before
        below, nearest price first in the direction of the move, acceptance order)."""
        hits: list[tuple[int, int, int, int, Trigger]] = []
        for t in self._triggers:
            for i, price in enumerate(path):
                if price >= t.price if t.above else price <= t.price:
                    hits.append((i, 0 if t.above else 1, t.price if t.above else -t.price, t.id, t))
                    break
        hits.sort(key=lambda hit: hit[:4])
        fired = [hit[4] for hit in hits]
        for t in fired:
            self._triggers.remove(t)
        return fired
