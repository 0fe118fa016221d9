"""The sequencer: one task applies every command in arrival order, in batches.

For each batch: apply the commands to the engine (rejections change nothing
and are not journaled), write one journal record for those that changed state,
fsync it (group commit), and only then resolve the callers' futures and hand
the events to subscribers. If the journal cannot be written the engine stops
taking commands (UNAVAILABLE) instead of acknowledging what it cannot keep;
its memory may be ahead of the disk, so only a restart, which recovers from
the disk, brings it back.

Queries read the engine between batches; they may see a batch whose fsync is
still under way, never half a command.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine_svc.core.commands import Command
from engine_svc.core.engine import Engine
from engine_svc.core.events import Event
from engine_svc.core.state import dump_state
from engine_svc.core.types import Code, Rejected
from engine_svc.journal import Journal, encode_command, encode_record
from servicekit.clock import now_us

log = logging.getLogger(__name__)

MAX_BATCH = 4096


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one command did: its events, or why it was rejected."""

    events: list[Event]
    code: Code = Code.OK
    message: str = ""
    details: dict[str, str] | None = None


class Sequencer:
    def __init__(
        self,
        engine: Engine,
        journal: Journal,
        *,
        publish: Callable[[list[Event]], None],
        snapshot: Callable[[dict[str, Any]], None] | None = None,
        snapshot_every: int = 0,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.engine = engine
        self.journal = journal
        self.publish = publish
        self.snapshot = snapshot
        self.snapshot_every = snapshot_every
        self.clock = clock
        self.failed: str = ""
        self.batches = 0
        self._pending: list[tuple[Command, asyncio.Future[Outcome]]] = []
        self._wakeup = asyncio.Event()
        self._closing = False
        self.last_snapshot_seq = engine.seq
        self._task: asyncio.Task[None] | None = None
        # Held from a batch's first command until its journal record is durable: the
        # engine's state is only fit for a snapshot outside it.
        self._batch_in_flight = asyncio.Lock()

    @property
    def queue_depth(self) -> int:
        """Commands submitted and not yet applied."""
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sequencer")

    def submit(self, command: Command) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        if self.failed or self._closing:
            reason = self.failed or "the engine is shutting down"
            future.set_result(Outcome([], Code.UNAVAILABLE, reason))
            return future
        self._pending.append((command, future))
        self._wakeup.set()
        return future

    async def close(self) -> None:
        """Finishes what was submitted, then stops."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = self._pending[:MAX_BATCH]
            del self._pending[:MAX_BATCH]
            async with self._batch_in_flight:
                await self._apply_batch(batch, loop)

    async def _apply_batch(
        self, batch: list[tuple[Command, asyncio.Future[Outcome]]], loop: asyncio.AbstractEventLoop
    ) -> None:
        engine = self.engine
        first_seq = engine.seq + 1
        outcomes: list[Outcome] = []
        journaled: list[list[Any]] = []
        events: list[Event] = []
        ts = max(self.clock(), engine.ts)  # engine time never goes backwards
        for command, _ in batch:
            try:
                produced = engine.apply(command, ts)
            except Rejected as exc:
                outcomes.append(Outcome([], exc.code, exc.message, exc.details))
                continue
            outcomes.append(Outcome(produced))
            if produced:
                journaled.append(encode_command(ts, command))
                events.extend(produced)
        if journaled:
            record = encode_record(first_seq, journaled)
            try:
                await loop.run_in_executor(None, self.journal.append, first_seq, record)
            except OSError as exc:
                self._fail(f"journal write failed: {exc}", batch)
                return
        self.batches += 1
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
        if events:
            self.publish(events)
        if (
            self.snapshot
            and self.snapshot_every
            and engine.seq - self.last_snapshot_seq >= self.snapshot_every
        ):
            self.take_snapshot()

    async def snapshot_between_batches(self) -> None:
        """Snapshots the engine between batches: never a batch whose journal write is still
        in flight (it may yet fail, and then it never happened)."""
        async with self._batch_in_flight:
            self.take_snapshot()

    def take_snapshot(self) -> None:
        """Snapshots the engine as of the last durable batch (only between batches)."""
        if self.snapshot is None or self.failed:
            return
        self.last_snapshot_seq = self.engine.seq
        self.snapshot(dump_state(self.engine))

    def _fail(self, reason: str, batch: list[tuple[Command, asyncio.Future[Outcome]]]) -> None:
        log.critical("refusing all commands from now on", extra={"reason": reason})
        self.failed = reason
        for _, future in [*batch, *self._pending]:
            if not future.done():
                future.set_result(Outcome([], Code.UNAVAILABLE, reason))
        self._pending.clear()
