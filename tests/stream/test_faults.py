"""Faults on the market-data path, with real processes: Redis and stream_svc are killed with
SIGKILL mid-stream and started again. The engine keeps matching throughout; the WebSocket
client stays connected, its depth id chain breaks only where a diff says it restarts (the
updates in between were lost, so it takes REST depth again), and its book equals the
engine's book after each recovery, even for a client that took REST depth mid-outage, and
it is sent every trade once, those made during the outages included."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from chaos.journal import read_truth
from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from launcher.health import check_health
from launcher.ports import free_port
from launcher.redis_server import LocalRedis, RedisProbe
from ledger_svc.server import LedgerRuntime
from tests.engine.conftest import RunningEngine
from tests.ledger.trading import Trader
from tests.stream.conftest import publishing

pytestmark = pytest.mark.timeout(180)
MARKET = "TATA_INR"


class Process:
    """A child process that can be killed and started again with the same command."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, env=self.env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            await self.kill()


async def until(check: Any, what: str) -> None:
    async with asyncio.timeout(20):
        while not await check():  # noqa: ASYNC110 - polling another process
            await asyncio.sleep(0.05)


class Client:
    """A WebSocket client keeping a book from REST depth plus depth diffs, as Binance's and
    Backpack's clients do: on a diff that restarts the chain it takes REST depth again."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, http: aiohttp.ClientSession,
                 url: str) -> None:  # fmt: skip
        self.ws, self.http, self.url = ws, http, url
        self.bids: dict[Decimal, str] = {}
        self.asks: dict[Decimal, str] = {}
        self.last = -1
        self.previous_u: int | None = None
        self.restarts = 0
        self.trade_ids: list[int] = []
        self.task: asyncio.Task[None]  # set by start()

    @classmethod
    async def start(cls, ws: aiohttp.ClientWebSocketResponse, http: aiohttp.ClientSession,
                    url: str) -> Client:  # fmt: skip
        client = cls(ws, http, url)
        await client.take_rest_depth()
        client.task = asyncio.create_task(client._read())
        return client

    async def take_rest_depth(self) -> None:
        async with self.http.get(f"{self.url}/api/v1/depth?symbol={MARKET}") as response:
            snapshot = await response.json()
        self.bids = {Decimal(p): q for p, q in snapshot["bids"]}
        self.asks = {Decimal(p): q for p, q in snapshot["asks"]}
        self.last = int(snapshot["lastUpdateId"])

    async def _read(self) -> None:
        async for msg in self.ws:
            frame = orjson.loads(msg.data)
            data = frame.get("data")
            if frame.get("stream") == f"trade.{MARKET}":
                self.trade_ids.append(data["t"])
            elif frame.get("stream") == f"depth.{MARKET}":
                if data["U"] > data["u"]:  # updates were lost: the book is taken again
                    self.restarts += 1
                    self.previous_u = data["u"]
                    await self.take_rest_depth()
                    continue
                if self.previous_u is not None:
                    assert data["U"] == self.previous_u + 1, "the depth id chain broke"
                self.previous_u = data["u"]
                if data["u"] <= self.last:
                    continue
                assert data["U"] <= self.last + 1
                for side, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
                    for price, qty in levels:
                        if Decimal(qty) == 0:
                            side.pop(Decimal(price), None)
                        else:
                            side[Decimal(price)] = qty
                self.last = data["u"]

    def book(self) -> tuple[list[tuple[Decimal, str]], list[tuple[Decimal, str]]]:
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())


async def rest_far_ask(engine: RunningEngine, price: str) -> epb.PlaceOrderReply:
    """Rests a 1 TATA ask of user 9 far above the market, where nothing trades with it."""
    reply = await engine.stub.PlaceOrder(
        epb.PlaceOrderRequest(
            user_id=9, market=MARKET, side=cpb.SIDE_SELL, type=cpb.ORDER_TYPE_LIMIT,
            price=price, quantity="1", time_in_force=cpb.TIME_IN_FORCE_GTC,
        )
    )  # fmt: skip
    assert reply.code == 0, reply.message
    return reply


async def settled_equal(client: Client, engine: RunningEngine, http: aiohttp.ClientSession,
                        url: str) -> None:  # fmt: skip
    """Mark the market with one more order, wait for the client to see it, then compare."""
    target = (await rest_far_ask(engine, "9999")).seq

    async def seen() -> bool:
        assert not client.task.done(), client.task
        return client.last >= target

    await until(seen, "the client's book to reach the marker")
    async with http.get(f"{url}/api/v1/depth?symbol={MARKET}") as response:
        depth = await response.json()
    assert client.book() == (
        [(Decimal(p), q) for p, q in depth["bids"]],
        [(Decimal(p), q) for p, q in depth["asks"]],
    )


@pytest.fixture
async def redis_process(tmp_path: Path) -> AsyncIterator[tuple[Process, str]]:
    redis = LocalRedis(tmp_path / "redis", free_port(), appendonly=False)
    await redis.prepare()
    process = Process(redis.spec().argv)
    await process.start()
    probe = RedisProbe(redis.url)
    await until(lambda: probe.check(timeout=0.5), "redis")
    yield process, redis.url
    await process.stop()


async def test_redis_and_stream_svc_restarts_leave_clients_a_correct_book(
    engine: RunningEngine,
    ledger_address: tuple[str, LedgerRuntime],
    redis_process: tuple[Process, str],
    stack_factory: Any,
) -> None:
    redis, redis_url = redis_process
    probe = RedisProbe(redis_url)
    stream_port = free_port()
    stream_address = f"127.0.0.1:{stream_port}"
    stream = Process(
        [sys.executable, "-m", "stream_svc"],
        env={
            **os.environ,
            "STREAM_GRPC_PORT": str(stream_port),
            "STREAM_HOST": "127.0.0.1",
            "ENGINE_ADDRESS": engine.address,
            "REDIS_URL": redis_url,
        },
    )
    await engine.stub.Deposit(epb.DepositRequest(user_id=9, asset="TATA", amount="1000"))
    trader = Trader(engine.stub, seed=11)
    await trader.fund()
    async with (
        publishing(engine.address, ledger_address[0], redis_url),
        contextlib.AsyncExitStack() as cleanup,
    ):
        await stream.start()
        cleanup.push_async_callback(stream.stop)
        await until(lambda: check_health(stream_address), "stream_svc")
        gateway = await stack_factory(stream_address=stream_address)
        http = await cleanup.enter_async_context(aiohttp.ClientSession())

        async def connect() -> Client:
            ws = await cleanup.enter_async_context(
                http.ws_connect(gateway.url.replace("http://", "ws://") + "/ws")
            )
            await ws.send_str(orjson.dumps(
                {"method": "SUBSCRIBE", "params": [f"depth.{MARKET}", f"trade.{MARKET}"]}
            ).decode())  # fmt: skip
            ack = orjson.loads((await ws.receive(timeout=10)).data)
            assert ack == {"id": None, "result": None}
            client = await Client.start(ws, http, gateway.url)
            cleanup.callback(client.task.cancel)
            return client

        client = await connect()
        await trader.run(60)
        await settled_equal(client, engine, http, gateway.url)

        # Redis dies: the engine keeps matching; nothing reaches the clients meanwhile. A
        # second client takes REST depth while a level is there that is gone again before
        # Redis is back (and was not there before): a diff from stream_svc's old book to its
        # new one would not name that level, and the client would keep it.
        await redis.kill()
        accepted = trader.accepted
        await trader.run(60)
        assert trader.accepted > accepted
        passing = await rest_far_ask(engine, "9000")
        latecomer = await connect()
        assert Decimal("9000") in latecomer.asks
        cancelled = await engine.stub.CancelOrder(
            epb.CancelOrderRequest(user_id=9, market=MARKET, order_id=passing.order.order_id)
        )
        assert cancelled.code == 0, cancelled.message
        await redis.start()
        await until(lambda: probe.check(timeout=0.5), "redis back")
        await trader.run(40)
        for each in (client, latecomer):
            await settled_equal(each, engine, http, gateway.url)
            assert each.restarts >= 1

        # stream_svc dies and comes back on its address; the gateway resubscribes.
        restarts = client.restarts
        await stream.kill()
        await trader.run(40)
        await stream.start()
        await until(lambda: check_health(stream_address), "stream_svc back")
        await trader.run(40)
        await settled_equal(client, engine, http, gateway.url)
        assert client.restarts > restarts

        assert not client.ws.closed
        # Every trade of the market from the first the client was sent to the last came once
        # and in order: those made while Redis was down too (the publisher sends them once it
        # is back), and while stream_svc was (the gateway takes them from its recent trades).
        truth = await read_truth(engine.stub, engine.runtime.engine.seq)
        first, last = client.trade_ids[0], client.trade_ids[-1]
        made = sorted(t for t, fill in truth.trades.items() if fill.market == MARKET)
        assert client.trade_ids == [t for t in made if first <= t <= last]
