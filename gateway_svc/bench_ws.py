"""WebSocket fan-out through one gateway: N clients on the depth and trades of a busy market.

`python -m gateway_svc.bench_ws --clients 1000,10000 --json` runs, for each N, a fresh
stack of real processes on free ports in a temporary directory: Redis, the engine (journal
fsync on), the publisher (`python -m stream_svc.publisher`), stream_svc and ONE gateway. No
ledger runs: LEDGER_ADDRESS names a port nobody answers, so the publisher starts with empty
candles after STREAM_LEDGER_WAIT_SECONDS, and the gateway is probed on /api/v1/markets
(its /health counts the ledger). Load comes from two other processes on loopback:

- clients: N WebSocket clients, each subscribed to `depth.TATA_INR` and
  `trade.TATA_INR`, at most CONNECT_CONCURRENCY handshakes at a time. Each client checks
  its own depth id chain (U = previous u + 1) and trade ids (consecutive: only this market
  trades) and counts gaps;
- driver: funds BUYERS and SELLERS through the engine's gRPC (Deposit), then, once every
  client is connected, sends GTC limit orders at a fixed `--rate` (PlaceOrder) priced
  uniformly within BAND_TICKS of 1000.00 INR on either side, so about half of them cross.

This process watches stream_svc directly (one gRPC subscription per topic) to learn what
each client should receive (`upstream_messages_per_second`) and how late messages leave
stream_svc, samples the gateway's RSS (/proc/<pid>/status) before the clients connect and
once they are connected (no orders yet: memory per connection is that difference over N),
its CPU (utime + stime from /proc/<pid>/stat) and its /metrics over a window of `--seconds`
that starts `--warmup` seconds after the flow did. Reported per N: messages delivered per
second (all clients), end-to-end delay from the engine's timestamp `E` to receipt by the
client (p50, p99; one machine, one clock), memory per connection, gateway CPU as a
percentage of one core, slow-consumer closes (1008 SLOW_CONSUMER) and other closes,
connection failures, gaps, and the CPU seconds of every process.

All processes share this machine's cores: a clients process that cannot keep up reads its
frames late (that shows as delay, and its CPU is reported), and when the gateway falls a
whole GATEWAY_WS_QUEUE_FRAMES behind for a client it closes it. A run that cannot be made
(too few file descriptors, a service that does not start, no trade published) is reported
with an `error` saying what failed; the other runs go on. `--profile DIR` samples the
gateway with py-spy over the window (DIR/gateway-<N>.txt, top functions in the result).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import dataclasses
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess
from pathlib import Path
from typing import Any, cast

import aiohttp
import grpc
import orjson
import yarl

from bench.ingest import LOCALHOST, CpuMeter, engine_spec
from bench.orders import machine_busy_seconds, start_profiler, top_functions
from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1 import engine_pb2_grpc as epb_grpc
from exchange.stream.v1 import stream_pb2 as spb
from exchange.stream.v1 import stream_pb2_grpc as spb_grpc
from launcher.health import HttpProbe
from launcher.ports import free_port
from launcher.redis_server import LocalRedis
from launcher.supervisor import ServiceSpec, Supervisor
from servicekit.clock import now_us

MARKET = "TATA_INR"  # tick 0.01 INR, step 1 TATA
TOPICS = (f"depth.{MARKET}", f"trade.{MARKET}")
SECRET = "bench-ws-token-secret-0123456789abcdefgh"  # 40 characters
BUYERS = range(1, 11)
SELLERS = range(11, 21)  # disjoint from the buyers: no self-trades
FUNDS = {True: ("INR", "1000000000"), False: ("TATA", "10000000")}  # buyer, seller
MID_CENTS = 100_000  # 1000.00 INR
BAND_TICKS = 10
MAX_IN_FLIGHT = 64  # orders awaiting their reply; beyond that the driver falls behind its rate
CONNECT_CONCURRENCY = 100  # below the gateway's listen backlog (128)
CONNECT_TIMEOUT_S = 120.0  # per client, from its turn to its SUBSCRIBE being acknowledged
FD_MARGIN = 256  # descriptors besides the sockets of the clients
SETTLE_S = 1.0  # after the last client connected, before memory is read
PUBLISH_TIMEOUT_S = 30.0
SLOW_CONSUMER = 1008


# -- the services ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    specs: list[ServiceSpec]
    engine: str
    stream: str
    gateway: str  # http://host:port


def stack(work_dir: Path, queue_frames: int) -> Stack:
    """Redis, engine, publisher, stream_svc and one gateway on free ports; no ledger."""
    redis = LocalRedis(work_dir / "redis", free_port(), appendonly=False)
    engine_port, stream_port, gateway_port = free_port(), free_port(), free_port()
    publisher_port, nobody = free_port(), free_port()
    engine = f"{LOCALHOST}:{engine_port}"
    stream = f"{LOCALHOST}:{stream_port}"
    common = {"ENGINE_ADDRESS": engine, "REDIS_URL": redis.url, "LOG_LEVEL": "WARNING"}
    publisher = ServiceSpec(
        name="publisher",
        argv=[sys.executable, "-m", "stream_svc.publisher"],
        env={
            **common,
            "STREAM_PUBLISHER_HOST": LOCALHOST,
            "STREAM_PUBLISHER_PORT": str(publisher_port),
            "LEDGER_ADDRESS": f"{LOCALHOST}:{nobody}",
            "STREAM_LEDGER_WAIT_SECONDS": "1",
        },
        health_address=f"{LOCALHOST}:{publisher_port}",
    )
    stream_spec = ServiceSpec(
        name="stream",
        argv=[sys.executable, "-m", "stream_svc"],
        env={**common, "STREAM_HOST": LOCALHOST, "STREAM_GRPC_PORT": str(stream_port)},
        health_address=stream,
    )
    base = f"http://{LOCALHOST}:{gateway_port}"
    gateway = ServiceSpec(
        name="gateway",
        argv=[sys.executable, "-m", "gateway_svc"],
        env={
            **common,
            "GATEWAY_HOST": LOCALHOST,
            "GATEWAY_PORT": str(gateway_port),
            "LEDGER_ADDRESS": f"{LOCALHOST}:{nobody}",
            "STREAM_ADDRESS": stream,
            "GATEWAY_TOKEN_SECRET": SECRET,
            "GATEWAY_WS_QUEUE_FRAMES": str(queue_frames),
        },
        ready_probe=HttpProbe(f"{base}/api/v1/markets"),
    )
    engine_svc = engine_spec(work_dir / "engine", engine_port)
    # The driver's deposits carry no admin token, whatever the caller's environment holds.
    engine_svc = dataclasses.replace(engine_svc, env={**engine_svc.env, "ENGINE_ADMIN_TOKEN": ""})
    specs = [redis.spec(), engine_svc, publisher, stream_spec, gateway]
    return Stack(specs, engine, stream, base)


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def gateway_metrics(session: aiohttp.ClientSession, base: str) -> dict[str, float]:
    """The gateway's WebSocket counters from /metrics."""
    wanted = ("gateway_ws_messages_total", "gateway_ws_slow_closed_total", "gateway_ws_connections")
    async with session.get(f"{base}/metrics") as response:
        text = await response.text()
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            values[name] = float(value)
    return values


def percentiles_ms(values_us: Sequence[int]) -> dict[str, float | None]:
    ordered = sorted(values_us)

    def at(q: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1000, 2)

    return {"p50": at(0.5), "p99": at(0.99), "max": at(1.0)}


async def receive(conn: Connection, timeout: float, what: str) -> Any:  # noqa: ASYNC109
    """The next message from a load process; TimeoutError/EOFError name what was awaited."""
    if not await asyncio.to_thread(conn.poll, timeout):
        raise TimeoutError(f"{what}: no answer within {timeout:g} s")
    try:
        return conn.recv()
    except EOFError:
        raise EOFError(f"{what}: the process exited without answering") from None


# -- the driver process: funds, then a steady flow of orders ---------------------------------


def driver_process(engine: str, rate: float, seed: int, conn: Connection) -> None:
    _install_uvloop()
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
        stub = epb_grpc.EngineServiceStub(channel)
        for buy, users in ((True, BUYERS), (False, SELLERS)):
            asset, amount = FUNDS[buy]
            for user in users:
                reply = await stub.Deposit(
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
                reply = await stub.PlaceOrder(request)
            except grpc.aio.AioRpcError as exc:
                refused[exc.code().name] += 1
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
        t0, t1 = window
        conn.send({"window_orders": sum(t0 <= t < t1 for t in accepted), "refused": dict(refused)})


# -- the clients process: N WebSocket clients ---------------------------------------------


def clients_process(url: str, count: int, conn: Connection) -> None:
    raise_fd_limit()
    _install_uvloop()
    asyncio.run(_clients(url, count, conn))


@dataclass
class ClientTally:
    """What the clients received; frames count only inside the window."""

    count: int
    window: tuple[int, int] = (sys.maxsize, sys.maxsize)
    connected: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    closes: Counter[str] = field(default_factory=Counter)
    error_frames: Counter[str] = field(default_factory=Counter)
    frames: dict[int, int] = field(default_factory=dict)  # per connected client, in the window
    delays_us: array.array[int] = field(default_factory=lambda: array.array("q"))
    trade_delays_us: array.array[int] = field(default_factory=lambda: array.array("q"))
    depth_gaps: int = 0
    trade_gaps: int = 0
    tried: asyncio.Event = field(default_factory=asyncio.Event)

    def attempt_done(self) -> None:
        if self.connected + sum(self.failures.values()) == self.count:
            self.tried.set()

    def result(self) -> dict[str, Any]:
        t0, t1 = self.window
        seconds = (t1 - t0) / 1e6
        ordered = sorted(self.frames.values()) or [0]
        return {
            "delivered": len(self.delays_us),
            "delivered_per_second": round(len(self.delays_us) / seconds),
            "trades_per_second": round(len(self.trade_delays_us) / seconds),
            "per_client_per_second": {
                "min": round(ordered[0] / seconds, 1),
                "p50": round(ordered[len(ordered) // 2] / seconds, 1),
                "max": round(ordered[-1] / seconds, 1),
            },
            "delay_ms": percentiles_ms(self.delays_us),
            "trade_delay_ms": percentiles_ms(self.trade_delays_us),
            "closes": dict(self.closes),
            "error_frames": dict(self.error_frames),
            "depth_gaps": self.depth_gaps,
            "trade_gaps": self.trade_gaps,
        }


async def _clients(url: str, count: int, conn: Connection) -> None:
    tally = ClientTally(count)
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    started = time.perf_counter()
    address = yarl.URL(url)
    sockets = [BenchSocket(i, address, tally) for i in range(count)]
    tasks = [asyncio.create_task(socket.connect(gate)) for socket in sockets]
    await tally.tried.wait()
    conn.send(
        {
            "connected": tally.connected,
            "connection_failures": sum(tally.failures.values()),
            "failure_reasons": dict(tally.failures.most_common(5)),
            "connect_seconds": round(time.perf_counter() - started, 2),
        }
    )
    tally.window = await asyncio.to_thread(conn.recv)
    await asyncio.sleep(max(0.0, (tally.window[1] - now_us()) / 1e6))
    conn.send(tally.result())
    await asyncio.to_thread(conn.recv)  # done: the gateway was read with us connected
    for socket in sockets:
        socket.abort()
    await asyncio.gather(*tasks, return_exceptions=True)


class BenchSocket(asyncio.Protocol):
    """One WebSocket client on a bare asyncio protocol: the handshake, then unmasked frames
    from the server parsed in place (pongs sent to pings), each text frame's JSON checked
    and timed. aiohttp's client costs the clients process about three times as much per
    frame, which made the clients, not the gateway, what a run measured."""

    def __init__(self, index: int, url: yarl.URL, tally: ClientTally) -> None:
        self.index, self.url, self.tally = index, url, tally
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.acknowledged: asyncio.Future[None] | None = None
        self.lost: asyncio.Future[None] | None = None
        self.last_u = self.last_t = 0

    async def connect(self, gate: asyncio.Semaphore) -> None:
        loop = asyncio.get_running_loop()
        self.acknowledged, self.lost = loop.create_future(), loop.create_future()
        try:
            async with gate, asyncio.timeout(CONNECT_TIMEOUT_S):
                await loop.create_connection(lambda: self, self.url.host or "", self.url.port or 80)
                await self.acknowledged
        except Exception as exc:  # counted, and the run goes on with the others
            self.tally.failures[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
            self.tally.attempt_done()
            self.abort()
            return
        self.tally.connected += 1
        self.tally.frames[self.index] = 0
        self.tally.attempt_done()
        await self.lost

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            f"GET {self.url.raw_path} HTTP/1.1\r\nHost: {self.url.raw_authority}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self.acknowledged is not None and not self.acknowledged.done():
            self.acknowledged.set_exception(ConnectionError(f"closed before the ack: {exc}"))
        elif self.lost is not None and not self.lost.done():
            self.tally.closes["lost"] += 1
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)

    def send(self, opcode: int, payload: bytes) -> None:
        """A masked frame, as a client must send it (RFC 6455 5.3)."""
        assert self.transport is not None
        assert len(payload) < 126  # a SUBSCRIBE or a pong: no extended length
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.fail(f"handshake refused: {bytes(buffer[:40])!r}")
                return
            self.upgraded = True
            del buffer[: end + 4]
            topics = {"method": "SUBSCRIBE", "params": list(TOPICS), "id": self.index}
            self.send(0x1, orjson.dumps(topics))
        at, size = 0, len(buffer)
        while size - at >= 2:
            opcode, length, head = buffer[at] & 0x0F, buffer[at + 1] & 0x7F, 2
            if length == 126:
                if size - at < 4:
                    break
                length, head = int.from_bytes(buffer[at + 2 : at + 4]), 4
            elif length == 127:
                if size - at < 10:
                    break
                length, head = int.from_bytes(buffer[at + 2 : at + 10]), 10
            if size - at < head + length:
                break
            payload = bytes(buffer[at + head : at + head + length])
            at += head + length
            if opcode == 0x1:
                self.text(payload)
            elif opcode == 0x9:
                self.send(0xA, payload)
            elif opcode == 0x8:
                code = int.from_bytes(payload[:2]) if len(payload) >= 2 else 1005
                self.tally.closes[f"{code} {payload[2:].decode(errors='replace')}"] += 1
                if self.lost is not None and not self.lost.done():
                    self.lost.set_result(None)  # counted here: not again as "lost"
                self.abort()
                return
        del buffer[:at]

    def fail(self, why: str) -> None:
        if self.acknowledged is not None and not self.acknowledged.done():
            self.acknowledged.set_exception(ConnectionError(why))
        self.abort()

    def text(self, payload: bytes) -> None:
        received = now_us()
        message = orjson.loads(payload)
        data = message.get("data")
        tally = self.tally
        if data is None:
            if message.get("id") == self.index and self.acknowledged is not None:
                if "error" in message:
                    self.fail(message["error"]["name"])
                elif not self.acknowledged.done():
                    self.acknowledged.set_result(None)
            else:
                tally.error_frames[message.get("error", {}).get("name", "?")] += 1
            return
        trade = data["e"] == "trade"
        if trade:
            tally.trade_gaps += self.last_t != 0 and data["t"] != self.last_t + 1
            self.last_t = data["t"]
        else:
            tally.depth_gaps += self.last_u != 0 and data["U"] != self.last_u + 1
            self.last_u = data["u"]
        if tally.window[0] <= received < tally.window[1]:
            tally.frames[self.index] += 1
            tally.delays_us.append(received - data["E"])
            if trade:
                tally.trade_delays_us.append(received - data["E"])


# -- what leaves stream_svc: the offered load, per client --------------------------------------


@dataclass
class UpstreamWatch:
    """Updates of the benchmark's topics as stream_svc sends them (snapshots left out)."""

    received_us: array.array[int] = field(default_factory=lambda: array.array("q"))
    delays_us: array.array[int] = field(default_factory=lambda: array.array("q"))
    trades_us: array.array[int] = field(default_factory=lambda: array.array("q"))  # received
    traded: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(self, stub: spb_grpc.StreamServiceAsyncStub, topic: str) -> None:
        async for item in stub.Subscribe(spb.SubscribeRequest(topic=topic)):
            if item.HasField("depth") and not item.depth.snapshot:
                ts = item.depth.ts_us
            elif item.HasField("trade") and not item.trade.recent:
                ts = item.trade.ts_us
                self.traded.set()
                self.trades_us.append(now_us())
            else:
                continue
            received = now_us()
            self.received_us.append(received)
            self.delays_us.append(received - ts)

    def window(self, t0: int, t1: int) -> dict[str, Any]:
        inside = [i for i, t in enumerate(self.received_us) if t0 <= t < t1]
        seconds = (t1 - t0) / 1e6
        return {
            "upstream_messages_per_second": round(len(inside) / seconds, 1),
            "upstream_trades_per_second": round(
                sum(t0 <= t < t1 for t in self.trades_us) / seconds, 1
            ),
            "stream_delay_ms": percentiles_ms([self.delays_us[i] for i in inside]),
        }


# -- one run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    clients: tuple[int, ...] = (1000, 10_000)
    seconds: float = 10.0
    warmup: float = 2.0
    rate: float = 200.0
    queue_frames: int = 5000
    seed: int = 1
    profile_dir: Path | None = None


async def run_once(count: int, options: Options) -> dict[str, Any]:
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if limit < count + FD_MARGIN:
        raise RuntimeError(
            f"RLIMIT_NOFILE hard limit {limit} < {count + FD_MARGIN} descriptors needed by "
            "the gateway and by the clients process"
        )
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp:
        s = stack(Path(tmp), options.queue_frames)
        async with (
            Supervisor(s.specs, prefix_output=False) as supervisor,
            grpc.aio.insecure_channel(s.stream) as stream_channel,
            aiohttp.ClientSession(trust_env=False) as http,
        ):
            run = Run(count, options, s, supervisor, http)
            stub = spb_grpc.StreamServiceStub(stream_channel)
            watchers = [asyncio.create_task(run.watch.follow(stub, t)) for t in TOPICS]
            try:
                return await run.measure()
            finally:
                for task in watchers:
                    task.cancel()
                await asyncio.gather(*watchers, return_exceptions=True)
                await run.end_processes()


@dataclass
class Run:
    """One N: the load processes, and what is read from the gateway around the window."""

    count: int
    options: Options
    services: Stack
    supervisor: Supervisor
    http: aiohttp.ClientSession
    watch: UpstreamWatch = field(default_factory=UpstreamWatch)
    context: SpawnContext = field(default_factory=lambda: multiprocessing.get_context("spawn"))
    processes: dict[str, SpawnProcess] = field(default_factory=dict)

    def start(self, name: str, target: Any, *args: Any) -> Connection:
        """Starts a load process; our end of the pipe it answers on."""
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=target, name=f"bench-ws-{name}",
                                       args=(*args, theirs))  # fmt: skip
        process.start()
        self.processes[name] = process
        return ours

    async def end_processes(self) -> None:
        for process in self.processes.values():
            if process.is_alive():
                process.terminate()
            await asyncio.to_thread(process.join, 10)

    async def measure(self) -> dict[str, Any]:
        count, options, s = self.count, self.options, self.services
        pids = {spec.name: self.supervisor.pid(spec.name) for spec in s.specs}
        gateway = pids["gateway"]
        driver = self.start("driver", driver_process, s.engine, options.rate, options.seed)
        await receive(driver, 60, "funding the users")
        rss_before = rss_bytes(gateway)

        ws_url = s.gateway.replace("http://", "ws://") + "/ws"
        clients = self.start("clients", clients_process, ws_url, count)
        connect_timeout = CONNECT_TIMEOUT_S + count / CONNECT_CONCURRENCY * 5
        connected = await receive(clients, connect_timeout, f"connecting {count} clients")
        if not connected["connected"]:
            raise RuntimeError(f"no client connected: {connected['failure_reasons']}")
        await asyncio.sleep(SETTLE_S)
        rss_connected = rss_bytes(gateway)

        driver.send("go")
        try:
            await asyncio.wait_for(self.watch.traded.wait(), PUBLISH_TIMEOUT_S)
        except TimeoutError:
            raise RuntimeError(
                f"no trade left stream_svc within {PUBLISH_TIMEOUT_S:g} s of the order flow: "
                "the publisher is not publishing"
            ) from None
        t0 = now_us() + round(options.warmup * 1e6)
        t1 = t0 + round(options.seconds * 1e6)
        clients.send((t0, t1))
        load = {name: p.pid or 0 for name, p in self.processes.items()}
        meter = CpuMeter({**pids, **load})

        await asyncio.sleep((t0 - now_us()) / 1e6)
        metrics_before, cpu_before = await gateway_metrics(self.http, s.gateway), meter.sample()
        busy_before = machine_busy_seconds()
        profiler: subprocess.Popen[bytes] | None = None
        if options.profile_dir is not None:
            profile_path = options.profile_dir / f"gateway-{count}.txt"
            profiler = start_profiler(gateway, options.seconds, profile_path)
        await asyncio.sleep((t1 - now_us()) / 1e6)
        cpu = meter.since(cpu_before)
        others = machine_busy_seconds() - busy_before - sum(cpu.values())
        metrics_after, rss_end = await gateway_metrics(self.http, s.gateway), rss_bytes(gateway)

        received = await receive(clients, 60 + count / 100, "the clients' tally")
        clients.send("done")
        driver.send((t0, t1))
        flow = await receive(driver, 60, "the order flow's tally")
        profile = None
        if profiler is not None:
            await asyncio.to_thread(profiler.wait, options.seconds + 60)
            profile = top_functions(profile_path.read_text() if profile_path.exists() else "")
        upstream = self.watch.window(t0, t1)
        trades_offered = upstream["upstream_trades_per_second"] * connected["connected"]
        queued = metrics_after.get("gateway_ws_messages_total", 0) - metrics_before.get(
            "gateway_ws_messages_total", 0
        )
        slow = sum(n for why, n in received["closes"].items() if why.startswith(str(SLOW_CONSUMER)))
        delivered = received["delivered_per_second"]
        return {
            "clients": count,
            **connected,
            "seconds": options.seconds,
            "order_rate": options.rate,
            "orders_per_second": round(flow["window_orders"] / options.seconds, 1),
            "orders_refused": flow["refused"],
            **upstream,
            "delivered_messages_per_second": delivered,
            # Trades are never merged: the part of them delivered in the window is exact.
            # Depth diffs are (the gateway merges those of a batch), so fewer frames carry all.
            "trades_delivered_fraction": (
                round(received["trades_per_second"] / trades_offered, 4) if trades_offered else None
            ),
            "per_client_messages_per_second": received["per_client_per_second"],
            "delay_ms": received["delay_ms"],
            "trade_delay_ms": received["trade_delay_ms"],
            "gateway": {
                "rss_before_mb": round(rss_before / 2**20, 1),
                "rss_connected_mb": round(rss_connected / 2**20, 1),
                "rss_end_mb": round(rss_end / 2**20, 1),
                "memory_per_connection_kb": round(
                    (rss_connected - rss_before) / connected["connected"] / 1024, 1
                ),
                "cpu_percent": round(100 * cpu["gateway"] / options.seconds, 1),
                "frames_queued_per_second": round(queued / options.seconds),
                "connections_at_end": metrics_after.get("gateway_ws_connections"),
                "slow_consumer_closed": metrics_after.get("gateway_ws_slow_closed_total", 0),
            },
            "slow_consumer_closes": slow,
            "closes": received["closes"],
            "error_frames": received["error_frames"],
            "depth_gaps": received["depth_gaps"],
            "trade_gaps": received["trade_gaps"],
            "cpu_seconds": cpu,
            "cpu_seconds_other_processes": round(max(0.0, others), 2),
            "restarts": {spec.name: self.supervisor.restarts(spec.name) for spec in s.specs},
            "profile": profile,
        }


async def run(options: Options, report: Any) -> dict[str, Any]:
    load_before = [round(x, 2) for x in os.getloadavg()]
    fd_limit = raise_fd_limit()
    runs = []
    for count in options.clients:
        try:
            result = await run_once(count, options)
        except Exception as exc:  # the next N still runs; the result says what failed
            result = {"clients": count, "error": f"{type(exc).__name__}: {exc}"}
        runs.append(result)
        print(summary_line(result), file=report, flush=True)
    return {
        "fan_out": runs,
        "topics": list(TOPICS),
        "seconds": options.seconds,
        "warmup_seconds": options.warmup,
        "order_rate": options.rate,
        "queue_frames": options.queue_frames,
        "fd_limit": fd_limit,
        "cpu_cores": len(os.sched_getaffinity(0)),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def summary_line(r: dict[str, Any]) -> str:
    """One line per N: the headline figures, or what failed."""
    if "error" in r:
        return f"{r['clients']:,} clients: FAILED: {r['error']}"
    g, d = r["gateway"], r["delay_ms"]
    failed = f" ({r['connection_failures']:,} failed)" if r["connection_failures"] else ""
    return (
        f"{r['clients']:,} clients ({r['connected']:,} connected{failed}): "
        f"{r['delivered_messages_per_second']:,} msgs/s delivered "
        f"(stream_svc sent {r['upstream_messages_per_second']} msgs/s per client at "
        f"{r['orders_per_second']} orders/s), {r['trades_delivered_fraction']:.1%} of trades, "
        f"delay p50 {d['p50']} ms p99 {d['p99']} ms, "
        f"{g['memory_per_connection_kb']} KB/connection, gateway CPU {g['cpu_percent']}% "
        f"of a core, {r['slow_consumer_closes']:,} slow-consumer closes"
    )


def _install_uvloop() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway_svc.bench_ws", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--clients", default="1000,10000", help="comma-separated N to run")
    parser.add_argument("--seconds", type=float, default=10.0, help="the measured window")
    parser.add_argument("--warmup", type=float, default=2.0, help="order flow before the window")
    parser.add_argument("--rate", type=float, default=200.0, help="orders per second")
    parser.add_argument("--queue-frames", type=int, default=5000, help="GATEWAY_WS_QUEUE_FRAMES")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy the gateway")
    parser.add_argument("--quick", action="store_true", help="4 clients, 2 s, 50 orders/s")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        clients = tuple(int(n) for n in args.clients.split(","))
    except ValueError:
        parser.error("--clients takes numbers separated by commas, e.g. 1000,10000")
    if min(clients) < 1 or args.seconds <= 0 or args.rate <= 0 or args.warmup < 0:
        parser.error("--clients, --seconds and --rate must be positive")
    options = Options(
        clients=(4,) if args.quick else clients,
        seconds=2.0 if args.quick else args.seconds,
        warmup=1.0 if args.quick else args.warmup,
        rate=50.0 if args.quick else args.rate,
        queue_frames=args.queue_frames,
        seed=args.seed,
        profile_dir=args.profile,
    )
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    # With --json, stdout's last line is the result; the summary lines go to stderr.
    result = asyncio.run(run(options, sys.stderr if args.json else sys.stdout))
    if args.json:
        print(orjson.dumps(result).decode())
    delivered = [r for r in result["fan_out"] if r.get("delivered_messages_per_second")]
    return 0 if len(delivered) == len(result["fan_out"]) else 1


if __name__ == "__main__":
    sys.exit(main())
