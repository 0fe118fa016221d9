"""The event hub's delivery to a subscriber that keeps up (engine_svc.hub)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path

import grpc
import pytest

from engine_svc.core.events import AssetListed, Event
from engine_svc.hub import EventHub
from exchange.common.v1 import common_pb2 as pb
from exchange.engine.v1 import engine_pb2 as epb
from tests.engine.conftest import RunningEngine
from tradekit.markets import Asset


def batch(seq: int) -> list[Event]:
    return [AssetListed(seq, seq, Asset(f"A{seq}", 2))]


def hub(tmp_path: Path) -> EventHub:
    return EventHub(lambda e: pb.EngineEvent(seq=e.seq, ts_us=e.ts), tmp_path, tmp_path, last_seq=0)


async def first_message(messages: AsyncGenerator[bytes]) -> list[int]:
    wire = await asyncio.wait_for(anext(messages), 10)
    return [e.seq for e in epb.EventBatch.FromString(wire).events]


async def test_a_subscriber_that_lingers_gets_the_batches_of_its_linger_in_one_message(
    tmp_path: Path,
) -> None:
    events = hub(tmp_path)
    messages = events.subscribe(1, linger_s=2.0)
    reading = asyncio.ensure_future(first_message(messages))
    await asyncio.sleep(0.05)  # the subscriber is caught up, waiting
    events.publish(batch(1))
    await asyncio.sleep(0.05)  # a later engine batch, well within the linger
    events.publish(batch(2))
    assert await reading == [1, 2]
    await messages.aclose()


async def test_a_subscriber_that_does_not_linger_gets_each_batch_at_once(tmp_path: Path) -> None:
    events = hub(tmp_path)
    messages = events.subscribe(1)
    reading = asyncio.ensure_future(first_message(messages))
    await asyncio.sleep(0.05)
    events.publish(batch(1))
    assert await reading == [1]
    events.publish(batch(2))
    assert await first_message(messages) == [2]
    await messages.aclose()


async def test_a_linger_over_a_second_is_refused(engine: RunningEngine) -> None:
    call = engine.stub.Subscribe(epb.SubscribeRequest(from_seq=1, linger_ms=1001))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call.read()
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
