"""Delays of the benchmark's clients, counted without listing them.

A frame's delays are every (receipt, engine timestamp `E`) pair of it: each client's
receipt of it minus each of its messages' `E` (a depth diff has one, a batch frame one per
trade). At 10,000 clients that is over a million pairs a second, so the clients keep only
each distinct frame's `E` values and its receipts (`Received`), and a quantile is found
exactly from those: the number of pairs with delay <= x is, per frame and per `E`, a bisect
of its sorted receipts at x + E, and the k-th smallest delay is the least x where that
count exceeds k (a binary search over whole microseconds: delays are integers). Frames of
several processes combine by concatenation: the pairs are the same.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

Received = tuple[Sequence[int], Sequence[int]]  # a frame's E values, its receipts (sorted; µs)

QUANTILES = {"p50": 0.5, "p99": 0.99, "max": 1.0}


def rank(count: int, q: float) -> int:
    """The 0-based rank of quantile `q` among `count` sorted values (as `percentiles_ms`)."""
    return min(count - 1, int(count * q))


def pairs(frames: Sequence[Received]) -> int:
    return sum(len(stamps) * len(receipts) for stamps, receipts in frames)


def at_most(frames: Sequence[Received], x: int) -> int:
    """How many pairs have a delay (receipt - E) of `x` µs or less."""
    return sum(bisect_right(receipts, x + stamp) for stamps, receipts in frames for stamp in stamps)


def kth(frames: Sequence[Received], k: int) -> int:
    """The `k`-th smallest delay (0-based) of every pair of `frames`; k < pairs(frames)."""
    present = [(stamps, receipts) for stamps, receipts in frames if stamps and receipts]
    lo = min(receipts[0] - max(stamps) for stamps, receipts in present)
    hi = max(receipts[-1] - min(stamps) for stamps, receipts in present)
    while lo < hi:  # the least x with more than k pairs at or below it is a delay itself
        mid = (lo + hi) // 2
        if at_most(present, mid) > k:
            hi = mid
        else:
            lo = mid + 1
    return lo


def percentiles_ms(frames: Sequence[Received]) -> dict[str, float | None]:
    """p50, p99 and max of the pairs' delays in ms, as figures.percentiles_ms of them all."""
    count = pairs(frames)
    return {
        name: round(kth(frames, rank(count, q)) / 1000, 2) if count else None
        for name, q in QUANTILES.items()
    }
