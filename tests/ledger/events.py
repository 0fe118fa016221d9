"""Reading an engine's whole event stream, for tests that compare the ledger with it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub


async def all_events(stub: EngineServiceAsyncStub, last_seq: int) -> list[cpb.EngineEvent]:
    """Events 1..last_seq, from the engine's Subscribe."""
    events: list[cpb.EngineEvent] = []
    call = stub.Subscribe(epb.SubscribeRequest(from_seq=1))
    async for batch in call:
        events.extend(batch.events)
        if events and events[-1].seq >= last_seq:
            break
    call.cancel()
    return events[:last_seq]
