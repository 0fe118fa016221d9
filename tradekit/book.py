"""A price-level book kept from a snapshot plus diffs, with the update-id chain checked.

Ids are engine sequence numbers. A diff names every level that changed over its range, at
its quantity at the diff's end, so applying one whose range starts before the book's id
is harmless. That is what lets `apply` accept any diff with
`first_update_id <= last_update_id + 1`. A book that fell out of step (a gap) is taken
again from the engine, and its consumers are told by a diff that restarts their chain
(`restart_to`), never by one that only holds the net change: that one would be wrong for
a consumer whose book lies inside the lost range."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from sortedcontainers import SortedDict

from exchange.common.v1 import common_pb2 as cpb
from exchange.stream.v1 import stream_pb2 as spb


class Gap(Exception):
    """A diff starts after the book's next id: updates were lost."""


@dataclass
class Book:
    market: str
    last_update_id: int = 0
    ts_us: int = 0
    # price -> quantity text; keyed by Decimal so that "100.5" sorts after "100.25"
    bids: SortedDict = field(default_factory=SortedDict)
    asks: SortedDict = field(default_factory=SortedDict)

    @classmethod
    def from_levels(
        cls,
        market: str,
        bids: list[cpb.PriceLevel],
        asks: list[cpb.PriceLevel],
        last_update_id: int,
        ts_us: int = 0,
    ) -> Book:
        book = cls(market, last_update_id, ts_us)
        book.bids.update((Decimal(lv.price), (lv.price, lv.quantity)) for lv in bids)
        book.asks.update((Decimal(lv.price), (lv.price, lv.quantity)) for lv in asks)
        return book

    def apply(self, diff: spb.DepthUpdate) -> bool:
        """Applies `diff`; False if it is stale (already covered). Raises Gap."""
        if diff.last_update_id <= self.last_update_id:
            return False
        if diff.first_update_id > self.last_update_id + 1:
            raise Gap(f"{self.market}: update {diff.first_update_id} after {self.last_update_id}")
        _set_levels(self.bids, diff.bids)
        _set_levels(self.asks, diff.asks)
        self.last_update_id = diff.last_update_id
        self.ts_us = diff.ts_us
        return True

    def snapshot(self, depth: int = 0) -> spb.DepthUpdate:
        """The whole book (or its best `depth` levels a side), best first."""
        return spb.DepthUpdate(
            market=self.market,
            first_update_id=self.last_update_id,
            last_update_id=self.last_update_id,
            bids=_levels(reversed(self.bids.values()), depth),
            asks=_levels(iter(self.asks.values()), depth),
            ts_us=self.ts_us,
            snapshot=True,
        )

    def best(self) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
        """(price, quantity) of the best bid and of the best ask, None for an empty side."""
        bid = self.bids.peekitem(-1)[1] if self.bids else None
        ask = self.asks.peekitem(0)[1] if self.asks else None
        return bid, ask

    def restart_to(self, newer: Book) -> spb.DepthUpdate:
        """The diff that restarts a consumer's id chain at `newer` after updates were lost.

        Its `U` is past its `u` (`U` = `u` + 1), so every consumer that checks the chain sees a
        gap and takes REST depth again: a diff from this book to `newer` would be right only
        for a consumer whose book is exactly this one, and wrong for one that took REST depth
        while the updates were being lost (a level that came and went meanwhile would stay in
        its book). It carries every level of `newer` and a zero for each level of this book
        that is gone, so that a consumer that does not check the chain still ends up with
        `newer`."""
        return spb.DepthUpdate(
            market=self.market,
            first_update_id=newer.last_update_id + 1,
            last_update_id=newer.last_update_id,
            bids=_restart(self.bids, newer.bids, reverse=True),
            asks=_restart(self.asks, newer.asks, reverse=False),
            ts_us=newer.ts_us,
        )


def restarts_chain(diff: spb.DepthUpdate) -> bool:
    """Whether `diff` restarts its consumers' id chain (see `Book.restart_to`)."""
    return diff.first_update_id > diff.last_update_id


def _set_levels(side: SortedDict, levels: Iterable[cpb.PriceLevel]) -> None:
    for lv in levels:
        key = Decimal(lv.price)
        if Decimal(lv.quantity) == 0:
            side.pop(key, None)
        else:
            side[key] = (lv.price, lv.quantity)


def _levels(values: object, depth: int) -> list[cpb.PriceLevel]:
    out: list[cpb.PriceLevel] = []
    for price, qty in values:  # type: ignore[attr-defined]
        if depth and len(out) == depth:
            break
        out.append(cpb.PriceLevel(price=price, quantity=qty))
    return out


def _restart(old: SortedDict, new: SortedDict, *, reverse: bool) -> list[cpb.PriceLevel]:
    levels = [cpb.PriceLevel(price=v[0], quantity=v[1]) for v in new.values()]
    levels += [cpb.PriceLevel(price=v[0], quantity="0") for k, v in old.items() if k not in new]
    levels.sort(key=lambda lv: Decimal(lv.price), reverse=reverse)
    return levels
