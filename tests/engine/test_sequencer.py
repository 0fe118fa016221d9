"""The sequencer's snapshots never contain a batch whose journal write is still in flight:
if that write then fails, the batch never happened, and a snapshot must not say otherwise."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from engine_svc.config import DEFAULT_MARKETS_FILE, listing_commands
from engine_svc.core.commands import Deposit
from engine_svc.core.engine import Engine
from engine_svc.core.types import Code, UserId
from engine_svc.journal import Journal
from engine_svc.sequencer import Sequencer


class StallingJournal(Journal):
    """A real journal whose next append, once armed, waits to be released and then fails."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def append(self, first_seq: int, record: bytes) -> None:
        if self.armed:
            self.entered.set()
            self.release.wait(10)
            raise OSError("disk full")
        super().append(first_seq, record)


async def test_a_snapshot_waits_for_the_batch_in_flight_and_skips_it_if_it_fails(
    tmp_path: Path,
) -> None:
    journal = StallingJournal(tmp_path / "journal")
    snapshots: list[dict[str, Any]] = []
    sequencer = Sequencer(Engine(), journal, publish=lambda events: None, snapshot=snapshots.append)
    sequencer.start()
    for command in listing_commands(DEFAULT_MARKETS_FILE):
        assert (await sequencer.submit(command)).code == Code.OK
    durable_seq = sequencer.engine.seq

    journal.armed = True
    deposit = sequencer.submit(Deposit(UserId(1), "INR", 100))
    await asyncio.to_thread(journal.entered.wait, 10)  # the batch is applied, not yet durable
    snapshot = sequencer.snapshot_between_batches()
    await asyncio.sleep(0.1)
    assert not snapshot.done()  # it waits for the batch
    journal.release.set()

    assert (await deposit).code == Code.UNAVAILABLE
    await snapshot
    assert sequencer.failed
    assert all(s["seq"] <= durable_seq for s in snapshots)  # never the failed batch
    journal.close()
