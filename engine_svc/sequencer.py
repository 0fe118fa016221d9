"""The sequencer: one task applies every command in arrival order, in batches, and
pipelines them with the journal (group commit).

For each batch: apply the commands to the engine (rejections change nothing and
are not journaled) and encode one journal record for those that changed state.
The record is written and fdatasync'd in a worker thread (fdatasync releases the
GIL); meanwhile the sequencer applies the next batch in memory. A batch is
answered (its callers' futures resolve, its events go to subscribers) only once
its own record is durable, and batches are answered in order. One record at
most is on its way to the disk at a time, so records land in sequence order and
a record is never written after one that failed.

If a write fails, the engine stops taking commands (UNAVAILABLE) instead of
acknowledging what it cannot keep: the batch whose write failed, the batch
applied after it and everything queued are refused, and memory is rolled back
to what the disk holds (`reload`), so that queries never show what was refused;
a restart brings it back.

Queries read the engine between batches: they may see the two batches not yet
durable (the one being written and the one applied after it), never half a
command. So a reply built from memory is held until what it read is durable
(`durable`): if the engine dies first, the caller gets an error instead of a
state that never happened (a book at a seq that a restart gives to other events).
Snapshots are taken only when no batch is on its way to the disk.
"""

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from typing import Any, NamedTuple

from engine_svc.core.commands import Command
from engine_svc.core.engine import Engine
from engine_svc.core.events import Event
from engine_svc.core.state import dump_state
from engine_svc.core.types import Code, Rejected
from engine_svc.journal import Journal, encode_record
from servicekit.clock import now_us

log = logging.getLogger(__name__)

MAX_BATCH = 4096  # commands per batch, give or take the last submission taken
_OK = Code.OK  # a module constant: looking an enum member up on its class is slow
# Builds the Outcome of each applied command straight from a tuple, skipping the
# NamedTuple's Python-level __new__ (as the engine builds its hot events).
_new = tuple.__new__


class JournalFailed(Exception):
    """The journal could not be written: what memory showed past the disk never happened."""


class Outcome(NamedTuple):
    """What one command did: its events, or why it was rejected."""

    events: list[Event]
    code: Code = Code.OK
    message: str = ""
    details: dict[str, str] | None = None


Submission = tuple[list[Command], "asyncio.Future[list[Outcome]]"]


@dataclass(slots=True)
class _Applied:
    """A batch applied in memory and not answered yet: its journal record is on its way."""

    submissions: list[Submission]
    answers: list[list[Outcome]]  # per submission
    events: list[Event]
    refused: list[tuple[type[Command], Code]]
    size: int  # commands
    first_seq: int
    last_seq: int  # the engine's seq once the batch was applied
    record: bytes | None  # None if no command changed state: nothing to write
    write: "asyncio.Future[None] | None" = None


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
        self._snapshot_requests: list[asyncio.Future[None]] = []
        self.durable_seq = engine.seq  # every event up to it is on disk
        self._readers: list[tuple[int, asyncio.Future[None]]] = []  # waiting for a seq

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

    def durable(self, seq: int) -> asyncio.Future[None]:
        """Resolves once event `seq` is on disk (at once if it is); raises JournalFailed if
        the journal failed first, and then `seq` may never happen. (After a failure memory
        is rolled back to the disk, so reads of it are answered.)"""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if seq <= self.durable_seq:
            future.set_result(None)
        elif self.failed:
            future.set_exception(JournalFailed(self.failed))
        else:
            self._readers.append((seq, future))
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
        writing: _Applied | None = None  # the batch whose record is on its way to the disk
        while True:
            if self._pending and not self._snapshot_due():
                applied = self._apply(self._take_batch())
                # Batch N+1 is in memory: answer batch N once it is durable, then write N+1.
                if writing is not None:
                    await self._settle(writing, loop, then=applied)
                writing = None if self.failed else self._write(applied, loop)
                await asyncio.sleep(0)  # the answered callers and new submissions get a turn
            elif writing is not None:  # nothing to apply, or a snapshot is due: land it first
                await self._settle(writing, loop)
                writing = None
            elif self._snapshot_due():
                self.take_snapshot()
                for request in self._snapshot_requests:
                    request.set_result(None)
                self._snapshot_requests.clear()
            elif self._closing:
                return
            else:
                self._wakeup.clear()
                await self._wakeup.wait()

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

    def _apply(self, submissions: list[Submission]) -> _Applied:
        """Applies a batch in memory and encodes its journal record."""
        engine = self.engine
        apply = engine.apply
        first_seq = engine.seq + 1
        answers: list[list[Outcome]] = []
        journaled: list[Command] = []  # the commands that changed state
        events: list[Event] = []
        refused: list[tuple[type[Command], Code]] = []
        size = 0
        ts = max(self.clock(), engine.ts)  # engine time never goes backwards
        for commands, _ in submissions:
            size += len(commands)
            outcomes: list[Outcome] = []
            for command in commands:
                try:
                    produced = apply(command, ts)
                except Rejected as exc:
                    outcomes.append(Outcome([], exc.code, exc.message, exc.details))
                    refused.append((type(command), exc.code))
                    continue
                outcomes.append(_new(Outcome, (produced, _OK, "", None)))
                if produced:
                    journaled.append(command)
                    events.extend(produced)
            answers.append(outcomes)
        record = encode_record(first_seq, zip(repeat(ts), journaled)) if journaled else None
        return _Applied(submissions, answers, events, refused, size, first_seq, engine.seq, record)

    def _write(self, batch: _Applied, loop: asyncio.AbstractEventLoop) -> _Applied:
        """Starts writing the batch's record in a worker thread."""
        if batch.record is not None:
            batch.write = loop.run_in_executor(
                None, self.journal.append, batch.first_seq, batch.record
            )
        return batch

    async def _settle(
        self, batch: _Applied, loop: asyncio.AbstractEventLoop, then: _Applied | None = None
    ) -> None:
        """Answers the batch once its record is durable. If the write failed, rolls memory
        back to the disk and refuses it, `then` (the batch applied after it) and the queue."""
        if batch.write is not None:
            try:
                await batch.write
            except OSError as exc:
                await self._roll_back(loop)  # before any caller hears of the failure
                refused = batch.submissions + ([] if then is None else then.submissions)
                self._fail(f"journal write failed: {exc}", refused)
                return
        self._answer(batch)

    def _answer(self, batch: _Applied) -> None:
        self.batches += 1
        for commands, _ in batch.submissions:
            self.commands.update(map(type, commands))  # counted in C, not per command here
        self.refused.update(batch.refused)
        if self.on_batch is not None:
            self.on_batch(batch.size)
        for (_, future), outcomes in zip(batch.submissions, batch.answers, strict=True):
            if not future.done():
                future.set_result(outcomes)
        if batch.events:
            self.publish(batch.events)
        self.durable_seq = batch.last_seq
        if self._readers:
            waiting, self._readers = self._readers, []
            for seq, reader in waiting:
                if seq > self.durable_seq:
                    self._readers.append((seq, reader))
                elif not reader.done():
                    reader.set_result(None)

    def _snapshot_due(self) -> bool:
        return bool(self._snapshot_requests) or (
            self.snapshot is not None
            and self.snapshot_every > 0
            and not self.failed
            and self.engine.seq - self.last_snapshot_seq >= self.snapshot_every
        )

    def snapshot_between_batches(self) -> asyncio.Future[None]:
        """Has the engine snapshotted when no batch is on its way to the disk (a batch in
        flight may yet fail, and then it never happened): from now on the sequencer applies
        nothing more until the batch in flight has landed and the snapshot is taken. The
        future resolves once it is."""
        taken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._task is None or self._task.done():  # not running: nothing is in flight
            self.take_snapshot()
            taken.set_result(None)
            return taken
        self._snapshot_requests.append(taken)
        self._wakeup.set()
        return taken

    def take_snapshot(self) -> None:
        """Snapshots the engine as it is; only when every applied batch is durable."""
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
        """Brings the engine's memory back to the disk after a failed write: the batches
        applied since the last durable one never happened. Meanwhile queries see them, as
        they see a batch whose fsync is under way."""
        if self.reload is None:
            return
        try:
            durable = await loop.run_in_executor(None, self.reload)
        except Exception:
            log.exception("could not roll back to the journal: queries may show refused commands")
            return
        self.engine.take_over(durable)
        log.warning("rolled back to the journal", extra={"seq": self.engine.seq})

    def _fail(self, reason: str, refused: list[Submission]) -> None:
        log.critical("refusing all commands from now on", extra={"reason": reason})
        self.failed = reason
        for commands, future in [*refused, *self._pending]:
            self._unavailable(commands, future, reason)
        for _, reader in self._readers:
            if not reader.done():
                reader.set_exception(JournalFailed(reason))
        self._readers.clear()
        self._pending.clear()
        self._queued = 0
