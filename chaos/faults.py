"""Faults at seeded moments: SIGKILL a service (the Supervisor restarts it, as under
`make run`), or SIGSTOP one for a while and SIGCONT it. Each fault is timed until the service
passes its readiness probe again (gRPC health SERVING; the gateway's /health; a PostgreSQL
connection; Redis PING).

Faults are injected one after another, each once the previous service is back, except an
overlapping pair (`Fault.then`): a second service is killed while the first is still
restarting, such as Redis while the engine recovers, or the ledger while PostgreSQL is down.
Whether the first really was still down at that moment is measured, not assumed.

Signals go to the service's process group, as the launcher's own do: PostgreSQL's backends
die or freeze with its postmaster.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from launcher.spec import ServiceSpec
from launcher.supervisor import Supervisor

KILL = "SIGKILL"
FREEZE = "SIGSTOP"
# Every process of the stack (mm's simulated traders, `flow`, ride along unharmed).
KILL_TARGETS = ("engine", "ledger", "stream", "publisher", "gateway", "mm", "redis", "postgres")
FREEZE_TARGETS = ("engine", "ledger", "stream", "gateway", "redis", "postgres")
# (first, second): the second is killed while the first restarts. Each pair shares a
# dependency or a conversation: the engine and its bus, the ledger and its database, the
# ledger and the engine it replays from, stream_svc and its bus, the gateway and its backends.
OVERLAP_PAIRS = (
    ("engine", "redis"), ("postgres", "ledger"), ("engine", "ledger"), ("redis", "stream"),
    ("gateway", "engine"), ("redis", "gateway"), ("postgres", "engine"),
)  # fmt: skip
MAX_LAG = 0.3  # seconds from the first kill to the second: well inside any restart
RECOVERY_TIMEOUT = 180.0
T = TypeVar("T")


@dataclass(frozen=True)
class Fault:
    service: str
    kind: str  # KILL or FREEZE
    at: float  # seconds into the trial, at the earliest
    hold: float = 0.0  # FREEZE: seconds frozen
    then: str = ""  # KILL: a service killed `lag` seconds later, while this one restarts
    lag: float = 0.0


@dataclass(frozen=True)
class Injected:
    fault: Fault
    at: float  # seconds into the trial it was sent
    recovery: float  # seconds until ready again: from the kill, or from SIGCONT
    during: str = ""  # the service still restarting when this one was killed


class Deck(Generic[T]):
    """Targets dealt from a seeded, reshuffled deck: over trials, each is hit as often."""

    def __init__(self, rng: random.Random, targets: Sequence[T]) -> None:
        self._rng = rng
        self._targets = list(targets)
        self._cards: list[T] = []

    def deal(self) -> T:
        if not self._cards:
            self._cards = list(self._targets)
            self._rng.shuffle(self._cards)
        return self._cards.pop()


def plan(
    rng: random.Random,
    deck: Deck[str],
    seconds: float,
    kills: int,
    freezes: int,
    overlaps: int = 0,
    pairs: Deck[tuple[str, str]] | None = None,
) -> list[Fault]:
    """`kills` SIGKILLs, `freezes` SIGSTOPs and `overlaps` overlapping pairs of SIGKILLs (dealt
    from `pairs`) at random moments of a trial of `seconds`."""
    faults = [Fault(deck.deal(), KILL, rng.uniform(1.0, seconds * 0.8)) for _ in range(kills)]
    faults += [
        Fault(rng.choice(FREEZE_TARGETS), FREEZE, rng.uniform(1.0, seconds * 0.8),
              hold=rng.uniform(2.0, 6.0))
        for _ in range(freezes)
    ]  # fmt: skip
    for _ in range(overlaps):
        if pairs is None:
            raise ValueError("overlapping faults need a deck of pairs")
        first, second = pairs.deal()
        at = rng.uniform(1.0, seconds * 0.8)
        faults.append(Fault(first, KILL, at, then=second, lag=rng.uniform(0.0, MAX_LAG)))
    return sorted(faults, key=lambda f: f.at)


class Injector:
    def __init__(self, supervisor: Supervisor, specs: Sequence[ServiceSpec]) -> None:
        self._sup = supervisor
        self._specs = {spec.name: spec for spec in specs}

    async def run(self, faults: Sequence[Fault]) -> list[Injected]:
        """Inject each fault at its moment, one at a time: the next waits for the previous
        service to be back."""
        started = time.monotonic()
        done = []
        for fault in faults:
            await asyncio.sleep(max(0.0, started + fault.at - time.monotonic()))
            if fault.then:
                done += await self.overlap(fault, started)
                continue
            at = time.monotonic() - started
            recovery = await (self.kill(fault) if fault.kind == KILL else self.freeze(fault))
            done.append(Injected(fault, at, recovery))
        return done

    async def overlap(self, fault: Fault, started: float) -> list[Injected]:
        """Kill `fault.service`, then `fault.then` `fault.lag` seconds later; both are timed
        from their own kill until ready again."""
        first, second = fault.service, fault.then
        await self._sup.wait_healthy(first, RECOVERY_TIMEOUT)
        await self._sup.wait_healthy(second, RECOVERY_TIMEOUT)
        first_sent = time.monotonic()
        await self._sup.kill(first, signal.SIGKILL)
        first_back = asyncio.create_task(self._back(first, first_sent))
        await asyncio.sleep(fault.lag)
        second_sent = time.monotonic()
        still_down = not first_back.done()
        await self._sup.kill(second, signal.SIGKILL)
        second_recovery = await self._back(second, second_sent)
        first_recovery = await first_back
        return [
            Injected(Fault(first, KILL, fault.at), first_sent - started, first_recovery),
            Injected(
                Fault(second, KILL, fault.at + fault.lag),
                second_sent - started,
                second_recovery,
                during=first if still_down else "",
            ),
        ]

    async def _back(self, name: str, since: float) -> float:
        await self._sup.wait_healthy(name, RECOVERY_TIMEOUT)
        return time.monotonic() - since

    async def kill(self, fault: Fault) -> float:
        await self._sup.wait_healthy(fault.service, RECOVERY_TIMEOUT)  # not mid-restart
        sent = time.monotonic()
        await self._sup.kill(fault.service, signal.SIGKILL)
        await self._sup.wait_healthy(fault.service, RECOVERY_TIMEOUT)
        return time.monotonic() - sent

    async def freeze(self, fault: Fault) -> float:
        await self._sup.wait_healthy(fault.service, RECOVERY_TIMEOUT)
        group = self._sup.pid(fault.service)
        os.killpg(group, signal.SIGSTOP)
        try:
            await asyncio.sleep(fault.hold)
        finally:
            os.killpg(group, signal.SIGCONT)
        resumed = time.monotonic()
        await self.wait_ready(fault.service)
        return time.monotonic() - resumed

    async def wait_ready(self, name: str) -> None:
        """Until the service's own readiness probe passes (the Supervisor does not probe a
        running process again)."""
        probe = self._specs[name].probe
        async with asyncio.timeout(RECOVERY_TIMEOUT):
            while probe is not None and not await probe.check(timeout=2.0):  # noqa: ASYNC110 - polling another process
                await asyncio.sleep(0.05)

    async def all_ready(self) -> None:
        for name in self._specs:
            await self._sup.wait_healthy(name, RECOVERY_TIMEOUT)
            await self.wait_ready(name)
