"""The sequencer: one task applies every command in arrival order, in batches.

For each batch: apply the commands to the engine (rejections change nothing
and are not journaled), write one journal record for those that changed state,
fsync it (group commit), and only then resolve the callers' futures and hand
the events to subscribers. If the journal cannot be written the engine stops
taking commands (UNAVAILABLE) instead of acknowledging what it cannot keep,
and rolls its memory back to what the disk holds (`reload`), so that queries
never show what was refused; a restart brings it back.

Queries read the engine between batches; they may see a batch whose fsync is
still under way, never half a command.
"""

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from engine_svc.core.commands import Command
from engine_svc.core.engine import Engine
from engine_svc.core.events import Event
from engine_svc.core.state import dump_state
from engine_svc.core.types import Code, Rejected
from engine_svc.journal import Journal, encode_record
from servicekit.clock import now_us

log = logging.getLogger(__name__)

MAX_BATCH = 4096  # commands per batch, give or take the last submission taken


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one command did: its events, or why it was rejected."""

    events: list[Event]
    code: Code = Code.OK
    message: str = ""
    details: dict[str, str] | None = None


Submission = tuple[list[Command], "asyncio.Future[list[Outcome]]"]


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
        on_batch: Callable[[int], None] | None = None,
        reload: Callable[[], Engine] | None = None,
    ) -> None:
        self.engine = engine
        self.reload = reload  # the engine as the disk holds it (snapshot + journal)
        self.journal = journal
        self.publish = publish
        self.snapshot = snapshot
        self.snapshot_every = snapshot_every
        self.clock = clock
        self.on_batch = on_batch  # told the number of commands of each batch (for metrics)
        self.failed: str = ""
        self.batches = 0
        # Commands answered, by kind, and those refused, by kind and code; counted per
        # batch and read by the metrics on a scrape.
        self.commands: Counter[type[Command]] = Counter()
        self.refused: Counter[tuple[type[Command], Code]] = Counter()
        self._pending: list[Submission] = []
        self._queued = 0  # commands in _pending
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
        return self._queued

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sequencer")

    def submit(self, command: Command) -> asyncio.Future[Outcome]:
        """Queues one command; the future resolves once its batch is durable."""
        one: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

        def resolve(many: asyncio.Future[list[Outcome]]) -> None:
            if not one.done():
                one.set_result(many.result()[0])

        self.submit_many([command]).add_done_callback(resolve)
        return one

    def submit_many(self, commands: list[Command]) -> asyncio.Future[list[Outcome]]:
        """Queues commands to be applied in this order, in one batch; the future resolves
        with their outcomes once that batch is durable."""
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        if self.failed or self._closing:
            reason = self.failed or "the engine is shutting down"
            self._unavailable(commands, future, reason)
            return future
        self._pending.append((commands, future))
        self._queued += len(commands)
        self._wakeup.set()
        return future

    def count_refused(self, kind: type[Command], code: Code) -> None:
        """Counts a command refused before it reached the sequencer (it did not parse)."""
        self.commands[kind] += 1
        self.refused[(kind, code)] += 1

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
            batch = self._take_batch()
            async with self._batch_in_flight:
                await self._apply_batch(batch, loop)

    def _take_batch(self) -> list[Submission]:
        """Whole submissions from the front of the queue, up to about MAX_BATCH commands."""
        pending = self._pending
        taken = count = 0
        while taken < len(pending) and count < MAX_BATCH:
            count += len(pending[taken][0])
            taken += 1
        batch = pending[:taken]
        del pending[:taken]
        self._queued -= count
        return batch

    async def _apply_batch(self, batch: list[Submission], loop: asyncio.AbstractEventLoop) -> None:
        engine = self.engine
        apply = engine.apply
        first_seq = engine.seq + 1
        answers: list[list[Outcome]] = []
        journaled: list[Command] = []  # the commands that changed state
        events: list[Event] = []
        refused: list[tuple[type[Command], Code]] = []
        size = 0
        ts = max(self.clock(), engine.ts)  # engine time never goes backwards
        for commands, _ in batch:
            size += len(commands)
            outcomes: list[Outcome] = []
            for command in commands:
                try:
                    produced = apply(command, ts)
                except Rejected as exc:
                    outcomes.append(Outcome([], exc.code, exc.message, exc.details))
                    refused.append((type(command), exc.code))
                    continue
                outcomes.append(Outcome(produced))
                if produced:
                    journaled.append(command)
                    events.extend(produced)
            answers.append(outcomes)
        if journaled:
            record = encode_record(first_seq, zip(repeat(ts), journaled))
            try:
                await loop.run_in_executor(None, self.journal.append, first_seq, record)
            except OSError as exc:
                await self._roll_back(loop)  # before any caller hears of the failure
                self._fail(f"journal write failed: {exc}", batch)
                return
        self.batches += 1
        for commands, _ in batch:
            self.commands.update(map(type, commands))  # counted in C, not per command here
        self.refused.update(refused)
        if self.on_batch is not None:
            self.on_batch(size)
        for (_, future), outcomes in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(outcomes)
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

    def _unavailable(
        self, commands: list[Command], future: asyncio.Future[list[Outcome]], reason: str
    ) -> None:
        for command in commands:
            self.count_refused(type(command), Code.UNAVAILABLE)
        if not future.done():
            future.set_result([Outcome([], Code.UNAVAILABLE, reason)] * len(commands))

    async def _roll_back(self, loop: asyncio.AbstractEventLoop) -> None:
        """Brings the engine's memory back to the disk after a failed batch: it was applied
        and never became durable. Meanwhile queries see it, as they see a batch whose fsync
        is under way."""
        if self.reload is None:
            return
        try:
            durable = await loop.run_in_executor(None, self.reload)
        except Exception:
            log.exception("could not roll back to the journal: queries may show refused commands")
            return
        self.engine.take_over(durable)
        log.warning("rolled back to the journal", extra={"seq": self.engine.seq})

    def _fail(self, reason: str, batch: list[Submission]) -> None:
        log.critical("refusing all commands from now on", extra={"reason": reason})
        self.failed = reason
        for commands, future in [*batch, *self._pending]:
            self._unavailable(commands, future, reason)
        self._pending.clear()
        self._queued = 0
