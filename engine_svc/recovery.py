"""Recovery: the newest valid snapshot plus the journal after it.

Deterministic: commands carry the engine time they were applied at, so the
replayed engine produces the same events and the same `state_hash()`.
"""

import logging
import time
from collections.abc import Iterator
from pathlib import Path

from engine_svc.core.engine import Engine
from engine_svc.core.events import Event
from engine_svc.core.state import load_state
from engine_svc.core.types import Rejected
from engine_svc.journal import JournalCorrupt, Record, read_records
from engine_svc.snapshots import newest_valid

log = logging.getLogger(__name__)


def apply_record(engine: Engine, record: Record) -> list[Event]:
    """Replays one journal record; it must continue the event sequence exactly."""
    if record.first_seq != engine.seq + 1:
        raise JournalCorrupt(f"record starts at seq {record.first_seq}, engine is at {engine.seq}")
    events: list[Event] = []
    for ts, command in record.commands:
        try:
            produced = engine.apply(command, ts)
        except Rejected as exc:
            raise JournalCorrupt(f"journaled command rejected on replay: {exc.message}") from None
        if not produced:
            raise JournalCorrupt("journaled command produced no event on replay")
        events.extend(produced)
    return events


def from_snapshot(snapshot_dir: Path, at_most_seq: int | None = None) -> Engine:
    """The engine of the newest valid snapshot (no newer than `at_most_seq`), or an empty one."""
    state = newest_valid(snapshot_dir, at_most_seq)
    return Engine() if state is None else load_state(state)


def replay(engine: Engine, journal_dir: Path) -> Iterator[list[Event]]:
    """Applies every journal record after the engine's position, yielding each one's events."""
    for record in read_records(journal_dir, after_seq=engine.seq):
        yield apply_record(engine, record)


def recover(journal_dir: Path, snapshot_dir: Path) -> Engine:
    """Rebuilds the engine: the newest valid snapshot, then the journal after it."""
    started = time.perf_counter()
    engine = from_snapshot(snapshot_dir)
    base_seq = engine.seq
    records = sum(1 for _ in replay(engine, journal_dir))
    log.info(
        "recovered",
        extra={
            "snapshot_seq": base_seq,
            "replayed_records": records,
            "seq": engine.seq,
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
    return engine
