"""A plain price-time order book for the benchmark: no accounts, no fees, no rules.

Invariants: within a price level, orders keep arrival order; no level is empty;
after every `add` the book is not crossed (best bid < best ask); a fill happens
at the resting order's price and never exceeds either order's remaining quantity.

It is the yardstick of `python -m engine_svc.bench --verify`: the engine, with
its risk checks, locking, fees and self-trade prevention, must trade exactly as
this book does on a workload whose buyers and sellers never meet themselves. The
workload generator also uses it as its model of the book. It shares no code with
`engine_svc.core`, so that a bug there cannot hide by being repeated here.
Prices and quantities are plain integers (ticks and steps); order ids are the
workload's own.
"""

from typing import NamedTuple

from sortedcontainers import SortedDict


class Fill(NamedTuple):
    maker: int
    taker: int
    price: int
    qty: int


class _Resting:
    __slots__ = ("buy", "id", "price", "remaining")

    def __init__(self, order_id: int, buy: bool, price: int, remaining: int) -> None:
        self.id = order_id
        self.buy = buy
        self.price = price
        self.remaining = remaining


class PriceTimeBook:
    def __init__(self) -> None:
        # Levels keyed so the best one comes first: bids by -price, asks by price.
        # A level is a dict of orders, which keeps arrival order.
        self._bids: SortedDict = SortedDict()
        self._asks: SortedDict = SortedDict()
        self._orders: dict[int, _Resting] = {}
        self._count = {True: 0, False: 0}

    def __contains__(self, order_id: int) -> bool:
        return order_id in self._orders

    def count(self, buy: bool) -> int:
        """Resting orders on one side."""
        return self._count[buy]

    def best_bid(self) -> int | None:
        return -self._bids.peekitem(0)[0] if self._bids else None

    def best_ask(self) -> int | None:
        return self._asks.peekitem(0)[0] if self._asks else None

    def levels(self, buy: bool, n: int) -> list[tuple[int, int]]:
        """The best `n` levels of a side as (price, total remaining), best first."""
        levels = self._bids if buy else self._asks
        result = []
        for level in levels.values()[:n]:
            orders: dict[int, _Resting] = level
            first = next(iter(orders.values()))
            result.append((first.price, sum(o.remaining for o in orders.values())))
        return result

    def add(self, order_id: int, buy: bool, price: int, qty: int) -> list[Fill]:
        """A limit GTC order: takes what crosses, in price-time order; the rest rests."""
        if order_id in self._orders or price <= 0 or qty <= 0:
            raise ValueError(f"bad order {order_id}: price {price}, qty {qty}")
        fills: list[Fill] = []
        opposite = self._asks if buy else self._bids
        while qty and opposite:
            key, level = opposite.peekitem(0)
            level_price = key if buy else -key
            if level_price > price if buy else level_price < price:
                break
            orders: dict[int, _Resting] = level
            while qty and orders:
                maker = next(iter(orders.values()))
                take = min(qty, maker.remaining)
                fills.append(Fill(maker.id, order_id, level_price, take))
                qty -= take
                maker.remaining -= take
                if not maker.remaining:
                    del orders[maker.id]
                    del self._orders[maker.id]
                    self._count[maker.buy] -= 1
            if not orders:
                del opposite[key]
        if qty:
            order = _Resting(order_id, buy, price, qty)
            own = self._bids if buy else self._asks
            key = -price if buy else price
            level = own.get(key)
            if level is None:
                level = own[key] = {}
            level[order_id] = order
            self._orders[order_id] = order
            self._count[buy] += 1
        return fills

    def cancel(self, order_id: int) -> None:
        """Removes a resting order; KeyError if it is not resting."""
        order = self._orders.pop(order_id)
        own = self._bids if order.buy else self._asks
        key = -order.price if order.buy else order.price
        level: dict[int, _Resting] = own[key]
        del level[order_id]
        if not level:
            del own[key]
        self._count[order.buy] -= 1
