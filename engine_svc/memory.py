"""Garbage collection fitted to the engine's heap.

The engine holds a large heap of long-lived objects that form no reference cycles
(orders, levels, balances, recent events and closed orders), and nearly all of its
garbage is freed by reference counting the moment it is dropped. With CPython's
default thresholds the cycle collector runs every 700 allocations and keeps walking
that heap: about a tenth of the core's time in the benchmark, and more in the service,
where the event buffer adds to the heap.
"""

import gc

# Young collections every 50,000 net allocations instead of 700: a batch's garbage is
# long gone by then, so each collection finds little to walk.
YOUNG_THRESHOLD = 50_000


def collect_rarely() -> None:
    """Young collections every YOUNG_THRESHOLD allocations. From the start: recovery builds
    the heap, and with the default thresholds collecting took 40% of replaying a journal."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def tune_gc() -> None:
    """Call once the long-lived state is in memory (after recovery): it is moved out of
    the collector's sight, and young collections become rare."""
    gc.collect()
    gc.freeze()
    collect_rarely()
