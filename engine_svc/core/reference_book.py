"""A deliberately naive order book: the obviously correct twin of `OrderBook`.

It keeps each side as a plain list in arrival order and answers every question
by sorting. The differential tests run the engine with both books and require
identical events.
"""

from collections.abc import Iterator

from engine_svc.core.order import Order
from engine_svc.core.types import Side


class ReferenceBook:
    def __init__(self) -> None:
        self._orders: dict[Side, list[Order]] = {Side.BUY: [], Side.SELL: []}

    def __len__(self) -> int:
        return sum(len(orders) for orders in self._orders.values())

    def _priority(self, side: Side) -> list[Order]:
        # Best price first; at one price, arrival order (ids grow with arrival).
        if side == Side.BUY:
            return sorted(self._orders[side], key=lambda o: (-o.price, o.id))
        return sorted(self._orders[side], key=lambda o: (o.price, o.id))

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
