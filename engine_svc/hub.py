"""Event fan-out for Subscribe(from_seq): recent batches in memory, older ones replayed.

The sequencer publishes each durable batch of events here. A subscriber walks
forward from its own cursor: from memory while its position is still
buffered; otherwise by replaying the journal from the newest snapshot at or
before its position (deterministic replay regenerates the very same events).
A slow subscriber therefore never holds memory: once the buffer has moved past
it, it reads from disk until it catches up.

Messages leave here serialized (EventBatch's wire bytes): each buffered batch is serialized
once for every subscriber, and a subscriber that is behind gets the buffered batches after
its position in one message (up to MERGE_EVENTS events; a repeated field's encodings
concatenate), since its follower pays per message (a gRPC read, a transaction, a Redis
round trip) more than per event, and so does this process per write. A follower that
keeps up can ask to linger (SubscribeRequest.linger_ms): it then gets a message at most
once per linger, holding every batch of that time, for a few milliseconds of delay.
"""

import asyncio
import bisect
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path

from engine_svc.core.events import Event
from engine_svc.recovery import from_snapshot, replay
from exchange.common.v1 import common_pb2 as pb
from exchange.engine.v1 import engine_pb2 as epb

REPLAY_CHUNK = 2048  # events per message while replaying from disk
# At most this many events of several buffered batches per message: no more than a full
# sequencer batch of MAX_BATCH accepted orders makes alone, so a follower's read-ahead,
# bounded in messages, holds no more than it already could.
MERGE_EVENTS = 4096
MAX_LINGER_MS = 1000  # SubscribeRequest.linger_ms


class EventHub:
    def __init__(
        self,
        to_proto: Callable[[Event], pb.EngineEvent],
        journal_dir: Path,
        snapshot_dir: Path,
        *,
        last_seq: int,
        capacity: int = 500_000,
    ) -> None:
        self.to_proto = to_proto
        self.journal_dir = journal_dir
        self.snapshot_dir = snapshot_dir
        self.capacity = capacity
        self.last_seq = last_seq  # every event up to here is durable and published
        self._firsts: list[int] = []  # first seq of each buffered batch
        self._batches: list[list[Event]] = []
        self._wires: list[bytes | None] = []  # serialized lazily, shared
        self._buffered = 0
        self._changed = asyncio.Event()

    @property
    def first_buffered(self) -> int:
        return self._firsts[0] if self._firsts else self.last_seq + 1

    def publish(self, events: list[Event]) -> None:
        self._firsts.append(events[0].seq)
        self._batches.append(events)
        self._wires.append(None)
        self._buffered += len(events)
        self.last_seq = events[-1].seq
        if self._buffered > self.capacity:
            drop = max(1, len(self._firsts) // 4)  # trim in chunks: amortized O(1)
            self._buffered -= sum(len(b) for b in self._batches[:drop])
            del self._firsts[:drop], self._batches[:drop], self._wires[:drop]
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _wire(self, i: int, skip: int = 0) -> bytes:
        """Batch `i` serialized, without its first `skip` events (a subscriber resuming)."""
        if skip:
            return _serialize([self.to_proto(e) for e in self._batches[i][skip:]])
        cached = self._wires[i]
        if cached is None:
            cached = _serialize([self.to_proto(e) for e in self._batches[i]])
            self._wires[i] = cached
        return cached

    def _from_memory(self, seq: int) -> tuple[bytes, int] | None:
        """The buffered events from `seq` on (the rest of its batch, then whole batches while
        the message stays within MERGE_EVENTS) and the seq after them; None if `seq` is not
        buffered."""
        i = bisect.bisect_right(self._firsts, seq) - 1
        if i < 0:
            return None
        skip = seq - self._firsts[i]
        last = i
        size = len(self._batches[i]) - skip
        while last + 1 < len(self._batches):
            size += len(self._batches[last + 1])
            if size > MERGE_EVENTS:
                break
            last += 1
        wire = b"".join([self._wire(i, skip), *(self._wire(j) for j in range(i + 1, last + 1))])
        return wire, self._batches[last][-1].seq + 1

    async def subscribe(self, from_seq: int, linger_s: float = 0.0) -> AsyncGenerator[bytes]:
        """EventBatch messages, serialized, from `from_seq` on, for as long as it is read.

        A caught-up subscriber with `linger_s` waits that long after the next batch, so
        that it and the batches right behind it go in one message; one that is behind is
        sent at once, merged as always."""
        seq = max(from_seq, 1)
        while True:
            if seq > self.last_seq:
                await self._changed.wait()
                if linger_s:
                    await asyncio.sleep(linger_s)
                continue
            if seq < self.first_buffered:
                async for message in self._replay(seq):
                    yield message.SerializeToString()
                    seq = message.events[-1].seq + 1
                continue
            live = self._from_memory(seq)
            if live is None:
                continue
            wire, seq = live
            yield wire

    async def _replay(self, from_seq: int) -> AsyncIterator[epb.EventBatch]:
        """Events from `from_seq` regenerated from disk, until the memory buffer has them."""
        engine = from_snapshot(self.snapshot_dir, at_most_seq=from_seq - 1)
        pending: list[pb.EngineEvent] = []
        for events in replay(engine, self.journal_dir):
            for e in events:
                if e.seq >= from_seq:
                    pending.append(self.to_proto(e))
            if len(pending) >= REPLAY_CHUNK or (
                pending and pending[-1].seq + 1 >= self.first_buffered
            ):
                yield epb.EventBatch(events=pending)
                pending = []
                await asyncio.sleep(0)  # let the sequencer run between chunks
            if engine.seq + 1 >= self.first_buffered and engine.seq >= from_seq - 1:
                break
        if pending:
            yield epb.EventBatch(events=pending)


def _serialize(events: list[pb.EngineEvent]) -> bytes:
    return epb.EventBatch(events=events).SerializeToString()
