"""WebSocket fan-out through one gateway: N clients on the depth and trades of a busy market.

`python -m bench.ws --clients 1000,10000 --json` runs, for each N, a fresh stack of real
processes on free ports in a temporary directory: Redis, the engine (journal fsync on), the
publisher (`python -m stream_svc.publisher`), stream_svc and ONE gateway (its frames every
`--interval-ms`, GATEWAY_WS_INTERVAL_MS; 0 is real time). No ledger runs: LEDGER_ADDRESS
names a port nobody answers, so the publisher starts with empty candles after
STREAM_LEDGER_WAIT_SECONDS, and the gateway is probed on /api/v1/markets (its /health counts
the ledger). Load comes from other processes on loopback:

- clients (bench/ws/clients.py): N picows WebSocket clients over `--client-processes`
  processes, each subscribed to `depth.TATA_INR` and, with `--trades single` (the
  default), `trade.TATA_INR`, one trade a frame, or with `--trades batch`
  `trade@TATA_INR@batch`, one frame of every trade per interval. Every frame is checked:
  the depth id chain (U = previous u + 1), trade ids without gaps or repeats (within a
  batch frame and across frames), and no batch frame empty;
- driver (bench/ws/driver.py): funds BUYERS and SELLERS through the engine's gRPC
  (Deposit), then, once every client is connected, sends GTC limit orders at a fixed
  `--rate` (PlaceOrder) priced uniformly within BAND_TICKS of 1000.00 INR on either side,
  so about half of them cross.

This process watches stream_svc directly (one gRPC subscription per topic) to learn what
each client should receive (`upstream_messages_per_second`) and how late messages leave
stream_svc, samples the gateway's RSS (/proc/<pid>/status) before the clients connect and
once they are connected (no orders yet: memory per connection is that difference over N),
the CPU (utime + stime from /proc/<pid>/stat) of every process and the gateway's /metrics
over a window of `--seconds` that starts `--warmup` seconds after the flow did. Reported
per N: frames and trades delivered per second (all clients), the part of the trades
delivered, end-to-end delay from the engine's timestamp `E` (each trade's own, in a batch
frame too) to receipt by the client (p50, p99; one machine, one clock), memory per
connection, the gateway's CPU and the clients' CPU as
percentages of one core (beside each other: whichever is near its cores' limit is what
limited the run), slow-consumer closes (1008 SLOW_CONSUMER) and other closes, connection
failures, chain gaps, missing or repeated trades and empty batch frames.

All processes share this machine's cores. A run that cannot be made (too few file
descriptors, a service that does not start, no trade published) is reported with an `error`
saying what failed; the other runs go on. `--profile DIR` samples the gateway with py-spy
over the window (DIR/gateway-<N>.txt, top functions in the result).

Beside this module, which runs it: stack.py starts the services, driver.py and clients.py
are the load processes, figures.py reads and adds up what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import orjson

from bench.machine import CpuMeter, machine_busy_seconds, start_profiler, top_functions
from bench.ws.clients import CONNECT_TIMEOUT_S, clients_process, raise_fd_limit
from bench.ws.driver import MARKET, driver_process
from bench.ws.figures import UpstreamWatch, gateway_metrics, rss_bytes, split, summed, tallied
from bench.ws.stack import Stack, stack
from exchange.stream.v1 import stream_pb2_grpc as spb_grpc
from launcher.supervisor import Supervisor
from servicekit.clock import now_us

TOPICS = (f"depth.{MARKET}", f"trade.{MARKET}")  # stream_svc's, read by this process
TRADES = ("single", "batch")  # --trades: one trade a frame, or trade@S@batch
FD_MARGIN = 256  # descriptors besides the sockets of the clients
SETTLE_S = 1.0  # after the last client connected, before memory is read
PUBLISH_TIMEOUT_S = 30.0
SLOW_CONSUMER = 1008


async def receive(conn: Connection, timeout: float, what: str) -> Any:  # noqa: ASYNC109
    """The next message from a load process; TimeoutError/EOFError name what was awaited."""
    if not await asyncio.to_thread(conn.poll, timeout):
        raise TimeoutError(f"{what}: no answer within {timeout:g} s")
    try:
        return conn.recv()
    except EOFError:
        raise EOFError(f"{what}: the process exited without answering") from None


# -- one run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    clients: tuple[int, ...] = (1000, 10_000)
    seconds: float = 10.0
    warmup: float = 2.0
    rate: float = 200.0
    queue_frames: int = 5000
    interval_ms: int = 100
    client_processes: int = 2
    seed: int = 1
    profile_dir: Path | None = None
    trades: str = "single"  # one of TRADES

    @property
    def client_topics(self) -> tuple[str, ...]:
        """What each client subscribes to: the depth, and the trades one by one or batched."""
        trades = f"trade@{MARKET}@batch" if self.trades == "batch" else f"trade.{MARKET}"
        return (f"depth.{MARKET}", trades)


async def run_once(count: int, options: Options) -> dict[str, Any]:
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if limit < count + FD_MARGIN:
        raise RuntimeError(
            f"RLIMIT_NOFILE hard limit {limit} < {count + FD_MARGIN} descriptors needed by "
            "the gateway and by the clients process"
        )
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp:
        s = stack(Path(tmp), options.queue_frames, options.interval_ms)
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
        shares = split(count, options.client_processes)
        clients = [
            self.start(f"clients-{i}", clients_process, ws_url, first, n, options.client_topics)
            for i, (first, n) in enumerate(shares)
        ]
        connect_timeout = CONNECT_TIMEOUT_S + count / 100 * 5
        connected = summed(
            [await receive(c, connect_timeout, f"connecting {count} clients") for c in clients]
        )
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
        for c in clients:
            c.send((t0, t1))
        load = {name: p.pid or 0 for name, p in self.processes.items()}
        meter = CpuMeter({**pids, **load})

        await asyncio.sleep((t0 - now_us()) / 1e6)
        # CPU first: a gateway busy with thousands of clients may take seconds to answer
        # /metrics, and CPU read after that answer would cover only part of the window.
        cpu_before, busy_before = meter.sample(), machine_busy_seconds()
        metered_from = time.monotonic()
        metrics_before = await gateway_metrics(self.http, s.gateway)
        profiler: subprocess.Popen[bytes] | None = None
        if options.profile_dir is not None:
            profile_path = options.profile_dir / f"gateway-{count}.txt"
            profiler = start_profiler(gateway, options.seconds, profile_path)
        await asyncio.sleep(max(0.0, (t1 - now_us()) / 1e6))
        cpu = meter.since(cpu_before)
        metered = time.monotonic() - metered_from  # the window, unless /metrics outlasted it
        clients_cpu = sum(v for name, v in cpu.items() if name.startswith("clients-"))
        cpu["clients"] = round(clients_cpu, 2)
        others = machine_busy_seconds() - busy_before - sum(cpu.values()) + clients_cpu
        metrics_after, rss_end = await gateway_metrics(self.http, s.gateway), rss_bytes(gateway)

        received = tallied(
            [await receive(c, 60 + count / 100, "the clients' tally") for c in clients],
            options.seconds,
        )
        for c in clients:
            c.send("done")
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
        return {
            "clients": count,
            **connected,
            "seconds": options.seconds,
            "order_rate": options.rate,
            "orders_per_second": round(flow["window_orders"] / options.seconds, 1),
            "orders_refused": flow["refused"],
            **upstream,
            "trades": options.trades,
            "delivered_frames_per_second": received["frames_per_second"],
            # Depth diffs and trades, a batch frame's each counted.
            "delivered_messages_per_second": received["delivered_per_second"],
            "delivered_trades_per_second": received["trades_per_second"],
            "delivered_trade_frames_per_second": received["trade_frames_per_second"],
            # Trades are never merged, nor dropped from a batch: the part of them delivered in
            # the window is exact (to within an interval at its edges). Depth diffs are merged
            # per interval.
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
                "cpu_percent": round(100 * cpu["gateway"] / metered, 1),
                "frames_queued_per_second": round(queued / options.seconds),
                "connections_at_end": metrics_after.get("gateway_ws_connections"),
                "slow_consumer_closed": metrics_after.get("gateway_ws_slow_closed_total", 0),
            },
            "slow_consumer_closes": slow,
            "closes": received["closes"],
            "error_frames": received["error_frames"],
            "depth_gaps": received["depth_gaps"],
            "trades_missing": received["trades_missing"],
            "trades_repeated": received["trades_repeated"],
            "batches_empty": received["batches_empty"],
            "clients_cpu_percent": round(100 * clients_cpu / metered, 1),
            "client_processes": len(clients),
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
        "topics": list(options.client_topics),
        "trades": options.trades,
        "seconds": options.seconds,
        "warmup_seconds": options.warmup,
        "order_rate": options.rate,
        "queue_frames": options.queue_frames,
        "interval_ms": options.interval_ms,
        "client_processes": options.client_processes,
        "fd_limit": fd_limit,
        "cpu_cores": len(os.sched_getaffinity(0)),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def summary_line(r: dict[str, Any]) -> str:
    """One line per N: the headline figures, or what failed."""
    if "error" in r:
        return f"{r['clients']:,} clients: FAILED: {r['error']}"
    g, d, td = r["gateway"], r["delay_ms"], r["trade_delay_ms"]
    failed = f" ({r['connection_failures']:,} failed)" if r["connection_failures"] else ""
    return (
        f"{r['clients']:,} clients ({r['connected']:,} connected{failed}), trades {r['trades']}: "
        f"{r['delivered_frames_per_second']:,} frames/s delivered, "
        f"{r['delivered_trades_per_second']:,} trades/s in "
        f"{r['delivered_trade_frames_per_second']:,} of them "
        f"(stream_svc sent {r['upstream_messages_per_second']} msgs/s per client at "
        f"{r['orders_per_second']} orders/s), {r['trades_delivered_fraction']:.1%} of trades, "
        f"delay p50 {d['p50']} ms p99 {d['p99']} ms (trades {td['p50']} / {td['p99']} ms), "
        f"{g['memory_per_connection_kb']} KB/connection, gateway CPU {g['cpu_percent']}% "
        f"of a core (clients {r['clients_cpu_percent']}%), "
        f"{r['slow_consumer_closes']:,} slow-consumer closes, {r['depth_gaps']} depth gaps, "
        f"{r['trades_missing']} trades missing, {r['trades_repeated']} repeated, "
        f"{r['batches_empty']} empty batches"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ws", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1000,10000", help="comma-separated N to run")
    parser.add_argument("--seconds", type=float, default=10.0, help="the measured window")
    parser.add_argument("--warmup", type=float, default=2.0, help="order flow before the window")
    parser.add_argument("--rate", type=float, default=200.0, help="orders per second")
    parser.add_argument("--queue-frames", type=int, default=5000, help="GATEWAY_WS_QUEUE_FRAMES")
    parser.add_argument("--interval-ms", type=int, default=100, help="GATEWAY_WS_INTERVAL_MS")
    parser.add_argument("--client-processes", type=int, default=2, help="processes of clients")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--trades", choices=TRADES, default="single", help="trade.S one by one, or trade@S@batch"
    )
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
    if args.interval_ms < 0 or args.client_processes < 1:
        parser.error("--interval-ms must be 0 or more, --client-processes at least 1")
    options = Options(
        clients=(4,) if args.quick else clients,
        seconds=2.0 if args.quick else args.seconds,
        warmup=1.0 if args.quick else args.warmup,
        rate=50.0 if args.quick else args.rate,
        queue_frames=args.queue_frames,
        interval_ms=args.interval_ms,
        client_processes=1 if args.quick else args.client_processes,
        seed=args.seed,
        profile_dir=args.profile,
        trades=args.trades,
    )
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    # With --json, stdout's last line is the result; the summary lines go to stderr.
    result = asyncio.run(run(options, sys.stderr if args.json else sys.stdout))
    if args.json:
        print(orjson.dumps(result).decode())
    delivered = [r for r in result["fan_out"] if r.get("delivered_frames_per_second")]
    return 0 if len(delivered) == len(result["fan_out"]) else 1


if __name__ == "__main__":
    sys.exit(main())
