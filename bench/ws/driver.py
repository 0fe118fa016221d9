"""The driver process: funds BUYERS and SELLERS through the engine's gRPC, then, once told
to go, places GTC limit orders at a fixed rate around 1000.00 INR until told the window.

Orders go over the engine's batched Execute stream (tradekit's EngineClient), the way the
gateway sends them, not as a unary PlaceOrder call each: a unary call's own cost in the
engine (a new HTTP/2 stream, its metadata and interceptors) is the fan-out's CPU on a
machine of two cores."""

from __future__ import annotations

import array
import asyncio
import random
import time
from collections import Counter
from multiprocessing.connection import Connection

import grpc

from bench.ws.clients import install_uvloop
from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from servicekit.clock import now_us
from tradekit.engine_client import EngineClient, EngineUnavailable

MARKET = "TATA_INR"  # tick 0.01 INR, step 1 TATA
BUYERS = range(1, 11)
SELLERS = range(11, 21)  # disjoint from the buyers: no self-trades
FUNDS = {True: ("INR", "1000000000"), False: ("TATA", "10000000")}  # buyer, seller
MID_CENTS = 100_000  # 1000.00 INR
BAND_TICKS = 10
MAX_IN_FLIGHT = 64  # orders awaiting their reply; beyond that the driver falls behind its rate


def driver_process(engine: str, rate: float, seed: int, conn: Connection) -> None:
    install_uvloop()
    asyncio.run(_drive(engine, rate, seed, conn))


def _order(rng: random.Random) -> epb.PlaceOrderRequest:
    buy = rng.random() < 0.5
    cents = MID_CENTS + rng.randint(-BAND_TICKS, BAND_TICKS)
    return epb.PlaceOrderRequest(
        user_id=rng.choice(BUYERS if buy else SELLERS),
        market=MARKET,
        side=cpb.SIDE_BUY if buy else cpb.SIDE_SELL,
        type=cpb.ORDER_TYPE_LIMIT,
        price=f"{cents // 100}.{cents % 100:02d}",
        quantity=str(rng.randint(1, 10)),
        time_in_force=cpb.TIME_IN_FORCE_GTC,
    )


async def _drive(engine: str, rate: float, seed: int, conn: Connection) -> None:
    async with grpc.aio.insecure_channel(engine) as channel:
        engine_client = EngineClient(channel)
        for buy, users in ((True, BUYERS), (False, SELLERS)):
            asset, amount = FUNDS[buy]
            for user in users:
                reply = await engine_client.deposit(
                    epb.DepositRequest(user_id=user, asset=asset, amount=amount)
                )
                if reply.code:
                    raise RuntimeError(f"deposit refused: {reply.message}")
        conn.send("funded")
        await asyncio.to_thread(conn.recv)  # go
        stop = asyncio.Event()
        accepted = array.array("q")  # reply times (µs) of accepted orders
        refused: Counter[str] = Counter()
        gate = asyncio.Semaphore(MAX_IN_FLIGHT)
        in_flight: set[asyncio.Task[None]] = set()

        async def place(request: epb.PlaceOrderRequest) -> None:
            try:
                reply = await engine_client.place(request)
            except EngineUnavailable:
                refused["UNAVAILABLE"] += 1
                return
            finally:
                gate.release()
            if reply.code:
                refused[cpb.ResultCode.Name(reply.code)] += 1
            else:
                accepted.append(now_us())

        async def flow() -> None:
            rng, interval = random.Random(seed), 1 / rate
            due = time.perf_counter()
            while not stop.is_set():
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                due += interval
                await gate.acquire()
                task = asyncio.create_task(place(_order(rng)))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)

        flowing = asyncio.create_task(flow())
        window: tuple[int, int] = await asyncio.to_thread(conn.recv)
        stop.set()
        await flowing
        await asyncio.gather(*in_flight)  # every order sent has its reply
        await engine_client.close()
        t0, t1 = window
        conn.send({"window_orders": sum(t0 <= t < t1 for t in accepted), "refused": dict(refused)})
