"""Every trade reaches a WebSocket subscriber once, whatever Redis forgets: real Redis (with
its append-only file), stream_svc and the publisher as processes killed with SIGKILL.

Trade ids are global, so nothing after the publisher can tell that one of a market's trades
is missing: the publisher itself must put back what Redis lost, before anything newer.
Two ways Redis loses trades: it acknowledged them and was killed before its file had them
(simulated by taking them off the recent-trades list before the kill, with no stream_svc
to have forwarded them meanwhile), and the publisher holding them unsent is killed while
Redis is down."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from redis.asyncio import Redis

from chaos.journal import read_truth
from exchange.engine.v1 import engine_pb2 as epb
from exchange.stream.v1 import stream_pb2 as spb
from launcher.health import check_health
from launcher.ports import free_port
from launcher.redis_server import LocalRedis, RedisProbe
from ledger_svc.server import LedgerRuntime
from stream_svc.redis_keys import state_key, trades_key
from tests.engine.conftest import RunningEngine
from tests.ledger.trading import Trader
from tests.stream.conftest import publishing
from tests.stream.test_faults import Process

pytestmark = pytest.mark.timeout(240)
MARKET = "TATA_INR"


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    try:
        async with asyncio.timeout(60):
            while not await check():  # noqa: ASYNC110 - polling other processes
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise TimeoutError(f"waited 60 s for {what}") from None


class Rig:
    """Redis, stream_svc and a gateway WebSocket client subscribed to the market's trades."""

    def __init__(self, engine: RunningEngine, redis: Process, redis_url: str) -> None:
        self.engine, self.redis, self.redis_url = engine, redis, redis_url
        self.probe = RedisProbe(redis_url)
        port = free_port()
        self.stream_address = f"127.0.0.1:{port}"
        self.stream = Process(
            [sys.executable, "-m", "stream_svc"],
            env={**os.environ, "STREAM_GRPC_PORT": str(port), "STREAM_HOST": "127.0.0.1",
                 "ENGINE_ADDRESS": engine.address, "REDIS_URL": redis_url},
        )  # fmt: skip
        self.trader = Trader(engine.stub, seed=5)
        self.received: list[int] = []

    async def made(self) -> list[int]:
        truth = await read_truth(self.engine.stub, self.engine.runtime.engine.seq)
        return sorted(t for t, fill in truth.trades.items() if fill.market == MARKET)

    async def restart_redis(self) -> None:
        await self.redis.kill()
        await self.redis.start()
        await until(lambda: self.probe.check(timeout=0.5), "redis back")

    async def received_all(self) -> None:
        """Marks the end with one more run of trades, waits for the client to have the
        market's last, then holds it to every trade of its span once, in order."""
        before = len(await self.made())
        while len(made := await self.made()) == before:
            await self.trader.run(20)

        async def arrived() -> bool:
            return bool(self.received) and self.received[-1] >= made[-1]

        with contextlib.suppress(TimeoutError):  # a trade never sent: the assertion says which
            await until(arrived, "the market's last trade")
        first = self.received[0]
        assert self.received == [t for t in made if t >= first]


def _trade_id(raw: bytes | str) -> int:
    assert isinstance(raw, bytes)
    return spb.MarketData.FromString(raw).trade.trade_id


async def _read(ws: aiohttp.ClientWebSocketResponse, into: list[int]) -> None:
    async for msg in ws:
        frame = orjson.loads(msg.data)
        if frame.get("stream") == f"trade.{MARKET}":
            into.append(frame["data"]["t"])


@pytest.fixture
async def rig(
    tmp_path: Path, engine: RunningEngine, stack_factory: Callable[..., Coroutine[Any, Any, Any]]
) -> AsyncIterator[Rig]:
    local = LocalRedis(tmp_path / "redis", free_port())
    await local.prepare()
    # Every write on disk before its reply: what Redis forgets here, the test made it forget.
    redis = Process([*local.spec().argv, "--appendfsync", "always"])
    await redis.start()
    rig = Rig(engine, redis, local.url)
    async with contextlib.AsyncExitStack() as cleanup:
        cleanup.push_async_callback(redis.stop)
        await until(lambda: rig.probe.check(timeout=0.5), "redis")
        await rig.stream.start()
        cleanup.push_async_callback(rig.stream.stop)
        await until(lambda: check_health(rig.stream_address), "stream_svc")
        await engine.stub.Deposit(epb.DepositRequest(user_id=9, asset="TATA", amount="1000"))
        await rig.trader.fund()
        gateway = await stack_factory(stream_address=rig.stream_address)
        http = await cleanup.enter_async_context(aiohttp.ClientSession())
        ws = await cleanup.enter_async_context(
            http.ws_connect(gateway.url.replace("http://", "ws://") + "/ws")
        )
        await ws.send_str(
            orjson.dumps({"method": "SUBSCRIBE", "params": [f"trade.{MARKET}"]}).decode()
        )
        assert orjson.loads((await ws.receive(timeout=10)).data) == {"id": None, "result": None}
        reader = asyncio.create_task(_read(ws, rig.received))
        cleanup.callback(reader.cancel)
        yield rig


async def test_trades_redis_acknowledged_then_lost_still_reach_subscribers(
    rig: Rig, ledger_address: tuple[str, LedgerRuntime]
) -> None:
    async with publishing(rig.engine.address, ledger_address[0], rig.redis_url):
        await rig.received_all()

        # stream_svc is down, so only Redis has the next trades; then Redis loses them (as
        # if killed before its file had them) and comes back.
        await rig.stream.kill()
        seen = rig.received[-1]
        while (await rig.made())[-1] <= seen:
            await rig.trader.run(20)
        newest = (await rig.made())[-1]
        redis = Redis.from_url(rig.redis_url)
        try:

            async def listed() -> bool:
                raws = await redis.lrange(trades_key(MARKET), 0, 0)
                return bool(raws) and _trade_id(raws[0]) == newest

            await until(listed, "the publisher to list the newest trade")
            raws = await redis.lrange(trades_key(MARKET), 0, -1)
            unseen = [r for r in raws if _trade_id(r) > seen]
            assert unseen
            await redis.lpop(trades_key(MARKET), len(unseen))
        finally:
            await redis.aclose()
        await rig.restart_redis()
        await rig.stream.start()
        await until(lambda: check_health(rig.stream_address), "stream_svc back")

        await rig.received_all()


async def test_trades_of_a_publisher_killed_while_redis_was_down_reach_subscribers(
    rig: Rig, ledger_address: tuple[str, LedgerRuntime]
) -> None:
    publisher = Process(
        [sys.executable, "-m", "stream_svc.publisher"],
        env={**os.environ, "STREAM_PUBLISHER_HOST": "127.0.0.1",
             "STREAM_PUBLISHER_PORT": str(free_port()), "ENGINE_ADDRESS": rig.engine.address,
             "LEDGER_ADDRESS": ledger_address[0], "REDIS_URL": rig.redis_url},
    )  # fmt: skip
    await publisher.start()
    redis = Redis.from_url(rig.redis_url)
    try:

        async def bootstrapped() -> bool:
            return bool(await redis.exists(state_key(MARKET)))

        await until(bootstrapped, "the publisher's first state")
        await rig.received_all()

        # Redis goes down; trades happen; the publisher holding them dies before Redis is
        # back. The ledger has them (the new publisher waits until it has caught up).
        await rig.redis.kill()
        seen = rig.received[-1]
        while (await rig.made())[-1] <= seen:
            await rig.trader.run(20)
        await publisher.kill()
        await rig.redis.start()
        await until(lambda: rig.probe.check(timeout=0.5), "redis back")
        await publisher.start()

        await rig.received_all()
    finally:
        await redis.aclose()
        await publisher.stop()


async def test_a_publisher_that_started_without_the_ledger_keeps_the_listed_trades(
    rig: Rig, ledger_address: tuple[str, LedgerRuntime]
) -> None:
    """A publisher that started while the ledger was away knows only the trades since: when
    Redis restarts, its rewrite of the list keeps the older ones Redis holds."""

    async def all_listed() -> bool:
        made = await rig.made()
        async with Redis.from_url(rig.redis_url) as redis:  # a fresh connection: Redis restarts
            raws = await redis.lrange(trades_key(MARKET), 0, -1)
        return [_trade_id(r) for r in raws] == made[::-1][:50]

    async with publishing(rig.engine.address, ledger_address[0], rig.redis_url):
        await rig.trader.run(40)
        await until(all_listed, "the publisher to list the trades")
    nowhere = f"127.0.0.1:{free_port()}"
    async with publishing(rig.engine.address, nowhere, rig.redis_url) as publisher:

        async def sent() -> bool:
            return publisher.published > 0

        await until(sent, "the publisher's first send")
        before = len(await rig.made())
        while len(await rig.made()) == before:
            await rig.trader.run(20)
        await until(all_listed, "the publisher to list the new trades")
        await rig.restart_redis()
        before = len(await rig.made())
        while len(await rig.made()) == before:
            await rig.trader.run(20)
        await until(all_listed, "every trade listed after Redis restarted")
