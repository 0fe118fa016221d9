"""The ledger's side of the ingest benchmark: its stored seq over time, polled from
GetIngestStatus, and the lag and backlog against the engine's acknowledgements."""

from __future__ import annotations

import asyncio
import bisect
import time
from dataclasses import dataclass, field

from bench.burst import Acks
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.ledger.v1 import ledger_pb2_grpc as lpb_grpc

POLL_SECONDS = 0.05
CATCH_UP_TIMEOUT_SECONDS = 600.0


@dataclass
class IngestWatch:
    """Samples of the ledger's last stored seq over time, one per poll.

    `poll()` runs until `target` is set and stored; it may be set while it runs, so one
    task covers the whole burst without knowing its end in advance.
    """

    stub: lpb_grpc.LedgerServiceAsyncStub
    target: int | None = None
    times: list[float] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)

    async def poll(self) -> float:
        """Return when the ledger was seen to have stored `target` (perf_counter).

        The time is taken when the reply arrives: the latest the ledger could have stored
        it, never earlier than it did.
        """
        while True:
            status = await self.stub.GetIngestStatus(lpb.GetIngestStatusRequest())
            now = time.perf_counter()
            self.times.append(now)
            self.seqs.append(status.last_seq)
            if self.target is not None and status.last_seq >= self.target:
                return now
            await asyncio.sleep(POLL_SECONDS)

    async def until(self, seq: int, timeout: float = CATCH_UP_TIMEOUT_SECONDS) -> float:  # noqa: ASYNC109
        """Set the target and wait for it, failing with where the ledger stands."""
        self.target = seq
        return await self.wait(asyncio.ensure_future(self.poll()), timeout)

    async def wait(self, poller: asyncio.Future[float], timeout: float) -> float:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                return await poller
        except TimeoutError:
            stored = self.seqs[-1] if self.seqs else 0
            raise RuntimeError(
                f"the ledger did not store event {self.target} within {timeout:g} s "
                f"(it is at {stored})"
            ) from None


def max_lag(acks: Acks, watch: IngestWatch) -> float:
    """The longest time from the engine acknowledging a seq to the ledger having it stored.

    Both series rise, so one pass matches each acknowledgement with the first poll that
    saw its seq stored. A seq stored before its reply arrived counts as no lag.
    """
    worst, j = 0.0, 0
    for acked_at, seq in zip(acks.times, acks.seqs, strict=True):
        while watch.seqs[j] < seq:
            j += 1  # the watch ran until the last seq was stored: j stays in range
        worst = max(worst, watch.times[j] - acked_at)
    return worst


def max_backlog(acks: Acks, watch: IngestWatch, since: float) -> int:
    """The most events acknowledged by the engine but not yet stored, at any poll."""
    worst = 0
    for polled_at, stored in zip(watch.times, watch.seqs, strict=True):
        if polled_at < since:
            continue
        i = bisect.bisect_right(acks.times, polled_at)
        if i:
            worst = max(worst, acks.seqs[i - 1] - stored)
    return worst
