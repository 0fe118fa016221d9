"""Faults at seeded moments: SIGKILL a service (the Supervisor restarts it, as under
`make run`), or SIGSTOP one for a while and SIGCONT it. Each fault is timed until the service
passes its readiness probe again (gRPC health SERVING; the gateway's /health; a PostgreSQL
connection; Redis PING).

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

from launcher.spec import ServiceSpec
from launcher.supervisor import Supervisor

KILL = "SIGKILL"
FREEZE = "SIGSTOP"
# Every process of the stack (mm's simulated traders, `flow`, ride along unharmed).
KILL_TARGETS = ("engine", "ledger", "stream", "publisher", "gateway", "mm", "redis", "postgres")
FREEZE_TARGETS = ("engine", "ledger", "stream", "gateway", "redis", "postgres")
RECOVERY_TIMEOUT = 180.0


@dataclass(frozen=True)
class Fault:
    service: str
    kind: str  # KILL or FREEZE
    at: float  # seconds into the trial, at the earliest
    hold: float = 0.0  # FREEZE: seconds frozen


@dataclass(frozen=True)
class Injected:
    fault: Fault
    at: float  # seconds into the trial it was sent
    recovery: float  # seconds until ready again: from the kill, or from SIGCONT


class Deck:
    """Kill targets dealt from a seeded, reshuffled deck: over trials, each is hit as often."""

    def __init__(self, rng: random.Random, targets: Sequence[str] = KILL_TARGETS) -> None:
        self._rng = rng
        self._targets = list(targets)
        self._cards: list[str] = []

    def deal(self) -> str:
        if not self._cards:
            self._cards = list(self._targets)
            self._rng.shuffle(self._cards)
        return self._cards.pop()


def plan(rng: random.Random, deck: Deck, seconds: float, kills: int, freezes: int) -> list[Fault]:
    """`kills` SIGKILLs and `freezes` SIGSTOPs at random moments of a trial of `seconds`."""
    faults = [Fault(deck.deal(), KILL, rng.uniform(1.0, seconds * 0.8)) for _ in range(kills)]
    faults += [
        Fault(rng.choice(FREEZE_TARGETS), FREEZE, rng.uniform(1.0, seconds * 0.8),
              hold=rng.uniform(2.0, 6.0))
        for _ in range(freezes)
    ]  # fmt: skip
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
            at = time.monotonic() - started
            recovery = await (self.kill(fault) if fault.kind == KILL else self.freeze(fault))
            done.append(Injected(fault, at, recovery))
        return done

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
