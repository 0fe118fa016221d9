"""Order entry over gRPC against a real engine process, journal fsync on.

`python -m engine_svc.bench_grpc --clients 64 --seconds 5 --json` starts the engine
as a child process in a temporary directory, funds users, then drives it from
this process (so the load is separate from the engine) in two ways:

- unary: `--clients` coroutines each sending one PlaceOrder at a time;
- stream: one `Execute` stream carrying batches of `--batch` orders, with
  `--in-flight` batches outstanding.

It reports orders/s and per-order latency (p50, p99) of each mode. Orders are
limit orders around a fixed price, from disjoint buyers and sellers, so about
one in ten crosses.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import orjson

from exchange.common.v1 import common_pb2 as pb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1 import engine_pb2_grpc as epb_grpc
from launcher.ports import free_port
from launcher.supervisor import ServiceSpec, Supervisor

MARKET = "TATA_INR"
USERS = 200


def _order(rng: random.Random) -> epb.PlaceOrderRequest:
    buy = rng.random() < 0.5
    offset = rng.randint(-20, 180)  # ticks away from 1000.00 on its own side; < 0 crosses
    price = 100_000 - offset if buy else 100_000 + offset
    user = rng.randint(1, USERS // 2) if buy else rng.randint(USERS // 2 + 1, USERS)
    return epb.PlaceOrderRequest(
        user_id=user,
        market=MARKET,
        side=pb.SIDE_BUY if buy else pb.SIDE_SELL,
        type=pb.ORDER_TYPE_LIMIT,
        price=f"{price // 100}.{price % 100:02d}",
        quantity=str(rng.randint(1, 10)),
        time_in_force=pb.TIME_IN_FORCE_IOC if offset < 0 else pb.TIME_IN_FORCE_GTC,
    )


def _summary(latencies_us: list[float], orders: int, seconds: float) -> dict[str, float]:
    ordered = sorted(latencies_us)
    return {
        "orders_per_second": round(orders / seconds),
        "p50_ms": round(statistics.median(ordered) / 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] / 1000, 3),
    }


async def _unary(
    stub: epb_grpc.EngineServiceAsyncStub, clients: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(seed: int) -> None:
        rng = random.Random(seed)
        while time.perf_counter() < deadline:
            started = time.perf_counter_ns()
            reply = await stub.PlaceOrder(_order(rng))
            latencies.append((time.perf_counter_ns() - started) / 1000)
            if reply.code:
                raise RuntimeError(f"rejected: {reply.message}")

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return _summary(latencies, len(latencies), time.perf_counter() - started)


async def _stream(
    stub: epb_grpc.EngineServiceAsyncStub, in_flight: int, batch: int, seconds: float
) -> dict[str, float]:
    rng = random.Random(99)
    slots = asyncio.Semaphore(in_flight)
    sent_at: list[int] = []
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def batches() -> AsyncIterator[epb.CommandBatch]:
        request_id = 0
        while time.perf_counter() < deadline:
            await slots.acquire()
            commands = []
            for _ in range(batch):
                commands.append(epb.Command(request_id=request_id, place_order=_order(rng)))
                request_id += 1
            sent_at.append(time.perf_counter_ns())
            yield epb.CommandBatch(commands=commands)

    started = time.perf_counter()
    orders = 0
    async for replies in stub.Execute(batches()):
        now = time.perf_counter_ns()
        for reply in replies.replies:
            if reply.place_order.code:
                raise RuntimeError(f"rejected: {reply.place_order.message}")
        latencies.append((now - sent_at[orders // batch]) / 1000)
        orders += len(replies.replies)
        slots.release()
    return _summary(latencies, orders, time.perf_counter() - started)


async def run(clients: int, seconds: float, batch: int, in_flight: int) -> dict[str, Any]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as data_dir:
        spec = ServiceSpec(
            name="engine",
            argv=[sys.executable, "-m", "engine_svc"],
            env={
                "ENGINE_GRPC_PORT": str(port),
                "ENGINE_HOST": "127.0.0.1",
                "ENGINE_DATA_DIR": data_dir,
            },
            health_address=f"127.0.0.1:{port}",
        )
        async with (
            Supervisor([spec], prefix_output=False) as _,
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
        ):
            stub = epb_grpc.EngineServiceStub(channel)
            for user in range(1, USERS + 1):
                for asset, amount in (("INR", "100000000000"), ("TATA", "100000000")):
                    await stub.Deposit(epb.DepositRequest(user_id=user, asset=asset, amount=amount))
            unary = await _unary(stub, clients, seconds)
            stream = await _stream(stub, in_flight, batch, seconds)
    return {
        "clients": clients,
        "batch": batch,
        "in_flight_batches": in_flight,
        "seconds": seconds,
        "journal_fsync": True,
        "unary_place_order": unary,
        "execute_stream": stream,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args.clients, args.seconds, args.batch, args.in_flight))
    if args.json:
        print(orjson.dumps(result).decode())
        return
    for mode in ("unary_place_order", "execute_stream"):
        r = result[mode]
        rate, p50, p99 = r["orders_per_second"], r["p50_ms"], r["p99_ms"]
        print(f"{mode:18} {rate:>8} orders/s  p50 {p50} ms  p99 {p99} ms")


if __name__ == "__main__":
    main()
