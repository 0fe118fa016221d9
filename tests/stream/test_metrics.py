"""The publisher's and stream_svc's Prometheus metrics count what really went through:
events applied, envelopes published, subscribers, messages out, resyncs, slow subscribers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from launcher.ports import free_port
from ledger_svc.server import LedgerRuntime
from stream_svc.hub import SlowSubscriber, StreamHub
from stream_svc.metrics import hub_registry, publisher_registry
from tests.engine.conftest import RunningEngine, deposit
from tests.monitoring.scrape import Page, fetch, scrape
from tests.stream.conftest import Live, stream_settings, streaming
from tradekit.topics import Topic

MARKET = "TATA_INR"


def buy(user: int, price: str) -> epb.PlaceOrderRequest:
    return epb.PlaceOrderRequest(
        user_id=user, market=MARKET, side=cpb.SIDE_BUY, type=cpb.ORDER_TYPE_LIMIT,
        price=price, quantity="1",
    )  # fmt: skip


def sell(user: int, quantity: str) -> epb.PlaceOrderRequest:
    return epb.PlaceOrderRequest(
        user_id=user, market=MARKET, side=cpb.SIDE_SELL, type=cpb.ORDER_TYPE_LIMIT,
        price="10", quantity=quantity,
    )  # fmt: skip


async def listed(hub: StreamHub) -> None:
    """Until the hub has the engine's market list (it asks in the background)."""
    async with asyncio.timeout(20):
        while MARKET not in hub.markets:  # noqa: ASYNC110 - another task fills it
            await asyncio.sleep(0.02)


def counted(page: Page, name: str, **labels: str) -> float:
    value = page.value(name, **labels)
    assert value is not None, f"{name} {labels} is not exported"
    return value


async def test_the_publisher_and_the_hub_count_a_trade(live: Live) -> None:
    await live.published()
    publisher_before = await scrape(publisher_registry(live.publisher))
    engine = live.stack.engine
    start_seq = engine.runtime.engine.seq
    await listed(live.hub)
    async with live.hub.subscription(Topic.parse(f"trade.{MARKET}")) as (_, trades):
        hub = await scrape(hub_registry(live.hub))
        assert counted(hub, "stream_subscribers", kind="trade") == 1
        assert counted(hub, "stream_subscribers", kind="depth") == 0
        out_before = counted(hub, "stream_messages_out_total")

        await deposit(engine.stub, 1, "INR", "1000")
        await deposit(engine.stub, 2, "TATA", "10")
        assert (await engine.stub.PlaceOrder(sell(2, "1"))).code == cpb.RESULT_CODE_OK
        assert (await engine.stub.PlaceOrder(buy(1, "10"))).code == cpb.RESULT_CODE_OK
        async with asyncio.timeout(20):
            traded = await trades.next()
        assert traded.trade.price == "10.00"
        await live.published()
        hub = await scrape(hub_registry(live.hub))
        publisher = await scrape(publisher_registry(live.publisher))

    seq = engine.runtime.engine.seq
    assert counted(publisher, "stream_publisher_last_seq") == seq
    events = counted(publisher, "stream_publisher_events_total")
    assert events - counted(publisher_before, "stream_publisher_events_total") == seq - start_seq
    batches = counted(publisher, "stream_publisher_batches_total")
    assert 1 <= batches - counted(publisher_before, "stream_publisher_batches_total") <= 4
    # At least the trade, the depth diff and the book ticker went out on the market channel.
    published = counted(publisher, "stream_publisher_messages_total")
    assert published > counted(publisher_before, "stream_publisher_messages_total")
    assert counted(publisher, "stream_publisher_redis_failures_total") == 0
    assert counted(hub, "stream_messages_out_total") >= out_before + 1
    assert counted(hub, "stream_resyncs_total") == live.hub.resyncs >= 1
    assert counted(hub, "stream_redis_connected") == 1
    assert counted(hub, "stream_slow_subscribers_dropped_total") == 0
    after = await scrape(hub_registry(live.hub))
    assert counted(after, "stream_subscribers", kind="trade") == 0


async def test_a_slow_subscriber_is_counted_when_dropped(live: Live) -> None:
    engine = live.stack.engine
    await deposit(engine.stub, 1, "INR", "1000")
    await deposit(engine.stub, 2, "TATA", "20")
    settings = stream_settings(engine.address, live.redis_url, queue_items=10)
    async with streaming(settings) as (hub, _):
        await listed(hub)
        async with hub.subscription(Topic.parse(f"trade.{MARKET}")) as (_, slow):
            # 12 trades for a queue of 10, never read.
            assert (await engine.stub.PlaceOrder(sell(2, "12"))).code == cpb.RESULT_CODE_OK
            for _ in range(12):
                assert (await engine.stub.PlaceOrder(buy(1, "10"))).code == cpb.RESULT_CODE_OK
            async with asyncio.timeout(20):
                while not slow.overflowed:  # noqa: ASYNC110 - the hub reads Redis in its own task
                    await asyncio.sleep(0.02)
            with pytest.raises(SlowSubscriber):
                await slow.next()
        page = await scrape(hub_registry(hub))
    assert counted(page, "stream_slow_subscribers_dropped_total") == 1
    assert counted(page, "stream_subscribers", kind="trade") == 0


def _start(module: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", module], env=env, stderr=subprocess.PIPE, text=True
    )


async def _serving(process: subprocess.Popen[str], port: int) -> Page:
    """The process's /metrics page, once its log says it serves (read off the event loop:
    the engine and the ledger answer from this one)."""

    def wait_for_serving() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if " serving" in line:
                return
        raise AssertionError(f"exited with {process.wait()} before serving")

    await asyncio.to_thread(wait_for_serving)
    return await fetch(f"http://127.0.0.1:{port}/metrics")


async def test_the_processes_serve_metrics_on_their_ports(
    engine: RunningEngine, ledger_address: tuple[str, LedgerRuntime], redis_url: str
) -> None:
    env = {
        **os.environ, "ENGINE_ADDRESS": engine.address, "LEDGER_ADDRESS": ledger_address[0],
        "REDIS_URL": redis_url, "STREAM_HOST": "127.0.0.1", "STREAM_PUBLISHER_HOST": "127.0.0.1",
        "STREAM_GRPC_PORT": str(free_port()), "STREAM_PUBLISHER_PORT": str(free_port()),
    }  # fmt: skip
    for module, variable, name in (
        ("stream_svc.publisher", "STREAM_PUBLISHER_METRICS_PORT", "stream_publisher_last_seq"),
        ("stream_svc", "STREAM_METRICS_PORT", "stream_slow_subscribers_dropped_total"),
    ):
        port = free_port()
        process = _start(module, {**env, variable: str(port)})
        try:
            page = await _serving(process, port)
            assert name in page.names
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.communicate, timeout=60)
