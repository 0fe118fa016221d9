"""The gateway's order entry: many commands on one `Execute` stream, against real servers."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from tests.engine.conftest import RunningEngine, deposit
from tradekit.engine_client import EngineClient, EngineUnavailable


def _sell(user: int, price: str) -> epb.PlaceOrderRequest:
    return epb.PlaceOrderRequest(
        user_id=user,
        market="TATA_INR",
        side=cpb.SIDE_SELL,
        type=cpb.ORDER_TYPE_LIMIT,
        price=price,
        quantity="1",
    )


async def test_a_batch_of_orders_is_answered_in_order(engine: RunningEngine) -> None:
    await deposit(engine.stub, 5, "TATA", "10")
    async with grpc.aio.insecure_channel(engine.address) as channel:
        client = EngineClient(channel)
        replies = await client.place_many(
            [_sell(5, "1500"), _sell(5, "1500.001"), _sell(5, "1501")]
        )
        await client.close()
    assert [r.code == 0 for r in replies] == [True, False, True]
    assert [r.order.price for r in (replies[0], replies[2])] == ["1500.00", "1501.00"]
    assert replies[0].order.order_id < replies[2].order.order_id


async def never_answer(commands: AsyncIterator[epb.CommandBatch], context: Any) -> None:
    """An engine's Execute that takes commands and never answers them."""
    async for _ in commands:
        pass


@pytest.fixture
async def silent_address() -> AsyncIterator[str]:
    server = grpc.aio.server()
    execute = grpc.stream_stream_rpc_method_handler(
        never_answer,
        request_deserializer=epb.CommandBatch.FromString,
        response_serializer=epb.ReplyBatch.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "exchange.engine.v1.EngineService", {"Execute": execute}
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(0)


async def test_commands_an_engine_never_answers_fail_as_unavailable(silent_address: str) -> None:
    async with grpc.aio.insecure_channel(silent_address) as channel:
        client = EngineClient(channel, timeout=0.2)
        async with asyncio.timeout(30):  # a safety net, not a measurement
            with pytest.raises(EngineUnavailable, match="in time"):
                await client.place(_sell(5, "1500"))
            with pytest.raises(EngineUnavailable, match="in time"):
                await client.place_many([_sell(5, "1500"), _sell(5, "1501")])
        await client.close()


async def test_an_outage_is_one_warning_however_many_requests_fail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every request during an outage tries a stream of its own; one warning says the engine
    is gone and the requests after it fail quietly (at debug)."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nobody = f"127.0.0.1:{unused.getsockname()[1]}"  # bound, never listening
        async with grpc.aio.insecure_channel(nobody) as channel:
            client = EngineClient(channel, timeout=5.0)
            with caplog.at_level(logging.DEBUG, logger="tradekit.engine_client"):
                for _ in range(5):
                    with pytest.raises(EngineUnavailable):
                        await client.place(_sell(5, "1500"))
            await client.close()
    levels = [r.levelno for r in caplog.records if r.msg.startswith("engine stream ended")]
    assert levels == [logging.WARNING] + [logging.DEBUG] * 4
