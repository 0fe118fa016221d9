"""Wall-clock time in microseconds since the Unix epoch: the unit of every `_us` field."""

import time


def now_us() -> int:
    return time.time_ns() // 1000
