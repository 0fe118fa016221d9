"""Pipelined group commit, on real files: the sequencer applies batch N+1 while batch N's
record is written and synced, answers each batch only once its record is durable, and a
failed write refuses every batch not yet durable and rolls memory back to the disk.

"Durable" is observed, not assumed: the journal's `on_sync` hook (called by the writer
thread right after each fdatasync returns) records how long the segment was at that
moment, and an answer is checked against what recovery makes of exactly that prefix of
the file: what a crash at that instant would leave.
"""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from engine_svc.config import DEFAULT_MARKETS_FILE, listing_commands
from engine_svc.core.commands import Command, Deposit, PlaceOrder
from engine_svc.core.engine import Engine
from engine_svc.core.events import Event, TradeExecuted
from engine_svc.core.state import state_hash
from engine_svc.core.types import (
    DEFAULT_STP,
    ClientOrderId,
    Code,
    OrderType,
    Side,
    TimeInForce,
    UserId,
)
from engine_svc.journal import Journal, segments
from engine_svc.recovery import recover
from engine_svc.sequencer import MAX_BATCH, JournalFailed, Outcome, Sequencer

pytestmark = pytest.mark.timeout(60)  # an answer never given hangs: fail soon instead
SELLER, BUYER = UserId(1), UserId(2)


def deposits(count: int, first_user: int = 100) -> list[Command]:
    """Deposits of 1 INR to `count` users: a batch of that many journaled commands."""
    return [Deposit(UserId(first_user + i), "INR", 100) for i in range(count)]


def limit(user: UserId, side: Side, price_inr: int, qty: int) -> PlaceOrder:
    return PlaceOrder(
        user, "TATA_INR", side, OrderType.LIMIT, price_inr * 100, qty, 0, TimeInForce.GTC,
        False, ClientOrderId(0), DEFAULT_STP,
    )  # fmt: skip


def trading() -> list[Command]:
    """Alice sells 7 TATA at 1600 and 5 at 1601; Bob buys 10 at 1601."""
    return [
        Deposit(SELLER, "TATA", 100),
        Deposit(BUYER, "INR", 10_000_000),
        limit(SELLER, Side.SELL, 1600, 7),
        limit(SELLER, Side.SELL, 1601, 5),
        limit(BUYER, Side.BUY, 1601, 10),
    ]


def last_seq(outcomes: list[Outcome]) -> int:
    return max(e.seq for o in outcomes for e in o.events)


class SyncedJournal(Journal):
    """The real journal; `synced` lists the segment's length after each fdatasync."""

    def __init__(self, directory: Path) -> None:
        self.synced: list[int] = []
        super().__init__(directory, on_sync=lambda _: self.synced.append(self._tail_length()))

    def _tail_length(self) -> int:
        return segments(self.directory)[-1].stat().st_size


def recover_synced_prefix(journal: SyncedJournal, scratch: Path) -> Engine:
    """What a crash right now would recover: only the bytes some fdatasync has covered."""
    (segment,) = segments(journal.directory)
    scratch = scratch / f"crash-{len(list(scratch.glob('crash-*')))}"
    copy = scratch / "journal"
    copy.mkdir(parents=True)
    durable = journal.synced[-1] if journal.synced else 0
    (copy / segment.name).write_bytes(segment.read_bytes()[:durable])
    return recover(copy, scratch / "snapshots")


async def test_each_batch_is_answered_only_after_its_record_is_synced_and_the_next_is_applied(
    tmp_path: Path,
) -> None:
    journal = SyncedJournal(tmp_path / "journal")
    # When a batch's events are published: its last seq, what recovery makes of the synced
    # part of the journal, and how far the engine has applied.
    published: list[tuple[int, int, int]] = []

    def publish(events: list[Event]) -> None:
        durable = recover_synced_prefix(journal, tmp_path).seq
        published.append((events[-1].seq, durable, sequencer.engine.seq))

    sequencer = Sequencer(Engine(), journal, publish=publish)
    sequencer.start()
    listed = await sequencer.submit_many(listing_commands(DEFAULT_MARKETS_FILE))
    assert all(o.code == Code.OK for o in listed)
    published.clear()

    # When each answer is delivered: the last seq it reports and what is durable.
    answered: dict[str, tuple[int, int]] = {}

    def observe(name: str, answer: asyncio.Future[list[Outcome]]) -> None:
        outcomes = answer.result()
        assert all(o.code == Code.OK for o in outcomes)
        durable = recover_synced_prefix(journal, tmp_path).seq
        answered[name] = (last_seq(outcomes), durable)

    # Two batches queued at once: a full one, then Alice's and Bob's trading.
    base = sequencer.engine.seq
    first = sequencer.submit_many(deposits(MAX_BATCH))
    second = sequencer.submit_many(trading())
    first.add_done_callback(lambda answer: observe("first", answer))
    second.add_done_callback(lambda answer: observe("second", answer))
    await asyncio.gather(first, second)
    await asyncio.sleep(0)

    end = base + MAX_BATCH + 9  # the trading makes 9 events
    (first_seq, first_durable, applied), second_published = published
    assert first_seq == base + MAX_BATCH
    assert first_durable >= first_seq  # published once on the disk
    assert applied == end  # the trading was applied before the deposits were answered
    assert second_published == (end, end, end)
    assert answered["first"][0] == first_seq
    assert answered["first"][1] >= first_seq  # on the disk when answered
    assert answered["second"] == (end, end)
    # Bob's buy took 7 at 1600 and 3 at 1601; what was answered is what recovery rebuilds.
    bought = [e for e in second.result()[-1].events if isinstance(e, TradeExecuted)]
    assert [(e.price, e.qty) for e in bought] == [(160_000, 7), (160_100, 3)]
    await sequencer.close()
    journal.close()
    recovered = recover(tmp_path / "journal", tmp_path / "snapshots")
    assert state_hash(recovered) == state_hash(sequencer.engine)


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """No file of this process may grow past `limit` bytes: writes beyond it fail (EFBIG,
    or come out short) as on a full disk. Python ignores SIGXFSZ."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


async def test_a_failed_write_refuses_the_batch_applied_after_it_too_and_rolls_both_back(
    tmp_path: Path,
) -> None:
    journal_dir, snapshot_dir = tmp_path / "journal", tmp_path / "snapshots"
    journal = Journal(journal_dir)
    seq_at_rollback: list[int] = []

    def reload() -> Engine:
        seq_at_rollback.append(sequencer.engine.seq)
        return recover(journal_dir, snapshot_dir)

    sequencer = Sequencer(Engine(), journal, publish=lambda events: None, reload=reload)
    sequencer.start()
    for commands in (listing_commands(DEFAULT_MARKETS_FILE), deposits(2000), trading()[:2]):
        assert all(o.code == Code.OK for o in await sequencer.submit_many(commands))
    before = (sequencer.engine.seq, state_hash(sequencer.engine))
    (segment,) = segments(journal_dir)

    # Batch N (a full batch of deposits) cannot be written; batch N+1 (orders that trade)
    # is applied in memory while N's write is under way.
    with file_size_limit(segment.stat().st_size + 100):
        batch_n = sequencer.submit_many(deposits(MAX_BATCH, first_user=10_000))
        batch_n1 = sequencer.submit_many(trading()[2:])
        refused = await asyncio.gather(batch_n, batch_n1)

    for outcomes in refused:
        assert {o.code for o in outcomes} == {Code.UNAVAILABLE}
        assert "journal write failed" in outcomes[0].message
    assert seq_at_rollback == [before[0] + MAX_BATCH + 7]  # N+1 (7 events) was applied
    assert (sequencer.engine.seq, state_hash(sequencer.engine)) == before
    # Everything after is refused, and the disk holds exactly the state before N.
    assert (await sequencer.submit(deposits(1)[0])).code == Code.UNAVAILABLE
    await sequencer.close()
    journal.close()
    recovered = recover(journal_dir, snapshot_dir)
    assert (recovered.seq, state_hash(recovered)) == before


async def test_a_snapshot_taken_while_batches_stream_holds_only_what_is_durable(
    tmp_path: Path,
) -> None:
    journal = SyncedJournal(tmp_path / "journal")
    taken: list[tuple[int, int]] = []  # (the snapshot's seq, what is durable then)

    def snapshot(state: dict[str, Any]) -> None:
        taken.append((state["seq"], recover_synced_prefix(journal, tmp_path).seq))

    sequencer = Sequencer(Engine(), journal, publish=lambda events: None, snapshot=snapshot)
    sequencer.start()
    await sequencer.submit_many(listing_commands(DEFAULT_MARKETS_FILE))
    base = sequencer.engine.seq

    first = sequencer.submit_many(deposits(MAX_BATCH))
    await asyncio.sleep(0)  # the first batch is applied and its record on its way
    second = sequencer.submit_many(trading())
    await asyncio.gather(sequencer.snapshot_between_batches(), first, second)

    # Taken once the first batch had landed, before the second was applied.
    assert taken == [(base + MAX_BATCH, base + MAX_BATCH)]
    await sequencer.close()
    journal.close()


async def test_a_read_of_memory_is_released_only_once_what_it_read_is_on_disk(
    tmp_path: Path,
) -> None:
    """Queries read memory, which may hold batches not yet durable; `durable(seq)` holds
    their replies until the synced prefix of the journal recovers to `seq` at least."""
    journal = SyncedJournal(tmp_path / "journal")
    sequencer = Sequencer(Engine(), journal, publish=lambda events: None)
    sequencer.start()
    await sequencer.submit_many(listing_commands(DEFAULT_MARKETS_FILE))
    assert sequencer.durable(sequencer.engine.seq).done()  # idle: all of memory is durable

    released: list[tuple[int, int]] = []  # (seq read, seq a crash then would recover)
    ahead: list[bool] = []  # whether memory was ahead of the disk at each read

    def read() -> None:
        seq = sequencer.engine.seq
        ahead.append(seq > sequencer.durable_seq)
        reader = sequencer.durable(seq)
        reader.add_done_callback(
            lambda _: released.append((seq, recover_synced_prefix(journal, tmp_path).seq))
        )

    # A read as each batch is answered: the batch after it is applied by then, not durable.
    batches = [sequencer.submit_many(deposits(MAX_BATCH, first_user=1000 * i)) for i in (1, 2, 3)]
    for batch in batches:
        batch.add_done_callback(lambda _: read())
    await asyncio.gather(*batches)
    await sequencer.durable(sequencer.engine.seq)
    await asyncio.sleep(0)
    assert any(ahead)
    assert len(released) == 3
    assert all(durable >= seq for seq, durable in released)
    await sequencer.close()
    journal.close()


async def test_reads_waiting_on_a_write_that_fails_are_told_the_journal_failed(
    tmp_path: Path,
) -> None:
    journal_dir = tmp_path / "journal"
    journal = Journal(journal_dir)
    sequencer = Sequencer(
        Engine(), journal, publish=lambda events: None,
        reload=lambda: recover(journal_dir, tmp_path / "snapshots"),
    )  # fmt: skip
    sequencer.start()
    await sequencer.submit_many(listing_commands(DEFAULT_MARKETS_FILE))
    (segment,) = segments(journal_dir)
    with file_size_limit(segment.stat().st_size + 100):
        batch = sequencer.submit_many(deposits(MAX_BATCH))
        while sequencer.engine.seq == sequencer.durable_seq:  # noqa: ASYNC110 - until it is applied
            await asyncio.sleep(0)
        reader = sequencer.durable(sequencer.engine.seq)
        await batch
    with pytest.raises(JournalFailed, match="journal write failed"):
        await reader
    await sequencer.durable(sequencer.engine.seq)  # rolled back to the disk: readable
    await sequencer.close()
    journal.close()
