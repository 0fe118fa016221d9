"""Orders end to end through the REST gateway: signed clients → gateway → engine → ledger.

`python -m bench.orders --clients 64 --seconds 10 --json` runs PostgreSQL,
Redis, the engine (journal fsync on), the ledger, the market-data path (the publisher and
stream_svc, as `make run` has them; `--no-market-data` leaves them out) and the gateway
(`python -m gateway_svc`) as child processes in a temporary directory. This process is the
load generator, apart from the gateway as a real client would be: it signs up `--users`
users through the REST API (buyers the first half, sellers the second, so no order meets
its own user), makes each an API key and funds it through the faucet, then runs each mode
for `--seconds` after a short warm-up:

- `single`: `--clients` concurrent loops, each signing (ED25519, the Backpack way) and
  POSTing one limit order to /api/v1/order and waiting for the reply, each on its own
  keep-alive connection (`bench/http_client.py`: a lean client, so that the load generator takes
  as little as it can of the cores it shares with the services). Clients share the users'
  keys when there are more clients than users; every order carries a fresh clientId, so no
  two signatures are equal.
- `binance`: the same orders as `single`, on the Binance face: POST /api/v3/order with the
  query string signed by the user's HMAC-SHA256 key (`X-MBX-APIKEY`), as a Binance client
  sends them, so that the two show what each dialect and signature costs.
- `batch`: `--batch-clients` loops POSTing `--batch-size` orders to /api/v1/orders.
- `depth`, `trades`: `--clients` loops GETting /api/v1/depth and /api/v1/trades.

Orders sit around 1000.00 INR: most rest on their own side, a tenth cross (IOC), so
trades are made and stored. Every request is signed when it is sent (a signature carries
its timestamp, and a replay is refused), which costs this process CPU on the same cores
as the services: the result reports the CPU seconds of every process per mode.

An order mode also reports the CPU budget of an order: each process's CPU time over the
run (/proc/<pid>/stat, with its children) divided by the orders accepted
(`cpu_ms_per_order`, `bench` being this process: the clients), their sum, and what that
sum means on this machine: the most orders per second its cores could carry at that cost
(`orders_per_second_at_full_cpu`) and the cores the mode's target would take
(`cores_needed_at_target`: 5,000 orders/s single, 50,000 batch).

A mode reports requests and orders per second (accepted orders only; rejected ones and
non-200 replies are counted by status), and p50/p99/p99.9 latency of a request from
sending it to having read the whole reply. After an order mode it waits until the ledger
has stored every event the engine made (`ledger_catch_up_seconds`): history is persisted.

`--profile DIR` then runs the first order mode of `--modes` once more with py-spy sampling
the gateway, the engine, the ledger and the publisher (non-blocking, 100 Hz; the first
gateway process of `--gateways`), writes their collapsed stacks to DIR/<service>.txt
(flamegraph.pl or speedscope read them) and reports the top functions of each by own and
total time, and its own time by package. Idle
threads are left out, so the shares are of CPU time; a function's own time includes the C
code it calls, which py-spy does not see (uvloop's event loop, its I/O and its callbacks,
shows as `run_app` in the gateway).

`--gateways N` runs N gateway processes on the one port (`GATEWAY_REUSE_PORT`: the kernel
spreads the clients' connections over them), as a host running several replicas would; the
gateway's CPU is their sum, and `gateway_replicas_cpu_seconds` shows how it was shared.

`--database-url` uses an existing server's (empty) database instead of starting PostgreSQL.

`--tls` runs the gateway on HTTPS and every gRPC hop under mutual TLS (`bench/tls.py`), the
clients connecting over TLS (each keeps its connection: one handshake per client), so that
a run beside a plaintext one shows what TLS costs in orders/s and CPU per order.

Beside this module, which runs the stack and the modes: bench/traders.py makes the users and
signs their requests, bench/http_load.py drives them and sums up a mode.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import orjson

from bench.http_load import cpu_budget, drive, summary
from bench.ingest_watch import IngestWatch
from bench.machine import (
    CpuMeter,
    listening_ports,
    machine_busy_seconds,
    start_profiler,
    top_functions,
)
from bench.services import (
    LOCALHOST,
    engine_spec,
    gateway_spec,
    ledger_spec,
    market_data_specs,
    postgres_specs,
)
from bench.tls import BenchTls
from bench.traders import (
    MARKET,
    SIGNUP_CONCURRENCY,
    Request,
    Trader,
    batch_request,
    binance_request,
    make_traders,
    public_request,
    single_request,
)
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1 import engine_pb2_grpc as epb_grpc
from exchange.ledger.v1 import ledger_pb2_grpc as lpb_grpc
from launcher.ports import free_port
from launcher.redis_server import LocalRedis
from launcher.supervisor import Supervisor

MODES = ("single", "binance", "batch", "depth", "trades")
ORDER_MODES = ("single", "binance", "batch")
PROFILED = ("gateway", "engine", "ledger", "publisher")  # the Python services on the path
TARGETS = {"single": 5_000, "binance": 5_000, "batch": 50_000}  # orders/s the issue asks for
WARMUP_SECONDS = 1.0


@dataclass(frozen=True)
class Options:
    clients: int = 64
    seconds: float = 10.0
    modes: tuple[str, ...] = MODES
    users: int = 64
    batch_clients: int = 16
    batch_size: int = 100
    seed: int = 1
    profile_dir: Path | None = None
    database_url: str | None = None
    market_data: bool = True
    gateways: int = 1  # processes sharing the port (SO_REUSEPORT)
    tls: bool = False  # HTTPS at the gateway, mutual TLS between the services


@dataclass
class Bench:
    options: Options
    port: int  # the gateway's
    traders: list[Trader]
    engine: epb_grpc.EngineServiceAsyncStub
    ledger: lpb_grpc.LedgerServiceAsyncStub
    cpu: CpuMeter
    client_tls: ssl.SSLContext | None = None

    def makers(self, mode: str) -> list[Callable[[], Request]]:
        o = self.options
        if mode in ("depth", "trades"):
            request = public_request(f"/api/v1/{mode}")
            return [lambda: request] * o.clients
        makers: list[Callable[[], Request]] = []
        count = o.batch_clients if mode == "batch" else o.clients
        for i in range(count):
            trader, rng = self.traders[i % len(self.traders)], random.Random(o.seed * 7919 + i)
            if mode == "batch":
                makers.append(functools.partial(batch_request, trader, rng, o.batch_size))
            elif mode == "binance":
                makers.append(functools.partial(binance_request, trader, rng))
            else:
                makers.append(functools.partial(single_request, trader, rng))
        return makers

    async def mode(self, mode: str) -> dict[str, Any]:
        makers = self.makers(mode)
        await drive(self.port, makers, WARMUP_SECONDS, self.client_tls)
        before, busy_before = self.cpu.sample(), machine_busy_seconds()
        tally, seconds = await drive(self.port, makers, self.options.seconds, self.client_tls)
        result = {"clients": len(makers), **summary(tally, seconds)}
        cpu = self.cpu.since(before)
        if self.options.gateways > 1:
            replicas = [cpu.pop(_gateway_name(i)) for i in range(self.options.gateways)]
            cpu["gateway"] = round(sum(replicas), 2)
            result["gateway_replicas_cpu_seconds"] = replicas
        result["cpu_seconds"] = cpu
        # Busy time of processes not in this benchmark: others sharing the cores.
        others = machine_busy_seconds() - busy_before - sum(cpu.values())
        result["cpu_seconds_other_processes"] = round(max(0.0, others), 2)
        if mode in ORDER_MODES:
            result.update(cpu_budget(cpu, tally.orders, TARGETS[mode]))
            if mode == "batch":
                result["orders_per_request"] = self.options.batch_size
            ended = time.perf_counter()
            depth = await self.engine.GetDepth(epb.GetDepthRequest(market=MARKET, limit=1))
            stored = await IngestWatch(self.ledger).until(depth.seq, timeout=300)
            result["ledger_catch_up_seconds"] = round(max(0.0, stored - ended), 3)
            result["engine_seq"] = depth.seq
        return result

    async def profile(self, pids: dict[str, int], out_dir: Path) -> dict[str, Any]:
        seconds = self.options.seconds
        mode = next((m for m in self.options.modes if m in ORDER_MODES), "single")
        await drive(self.port, self.makers(mode), WARMUP_SECONDS, self.client_tls)
        names = [name for name in PROFILED if name in pids]
        paths = {name: out_dir / f"{name}.txt" for name in names}
        profilers = [start_profiler(pids[name], seconds, path) for name, path in paths.items()]
        await asyncio.sleep(0.5)  # py-spy attaches
        tally, elapsed = await drive(self.port, self.makers(mode), seconds, self.client_tls)
        for process in profilers:
            await asyncio.to_thread(process.wait, seconds + 60)
        result = await asyncio.to_thread(read_profiles, paths)
        return {"mode": mode, "run": summary(tally, elapsed), **result}


async def _all_listen(pids: list[int], port: int) -> None:
    for _ in range(600):  # a minute
        if all(port in listening_ports(pid) for pid in pids):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"not every gateway process listens on port {port}")


def _gateway_name(i: int) -> str:
    return "gateway" if i == 0 else f"gateway-{i + 1}"


def read_profiles(paths: dict[str, Path]) -> dict[str, Any]:
    result: dict[str, Any] = {"files": {name: str(path) for name, path in paths.items()}}
    for name, path in paths.items():
        result[name] = top_functions(path.read_text() if path.exists() else "")
    return result


async def run(options: Options) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        work_dir = Path(tmp)
        stores, database_url = postgres_specs(options.database_url, work_dir, {})
        redis = LocalRedis(work_dir / "redis", free_port(), appendonly=False)
        engine_port, ledger_port, gateway_port = free_port(), free_port(), free_port()
        engine_address = f"{LOCALHOST}:{engine_port}"
        ledger_address = f"{LOCALHOST}:{ledger_port}"
        tls = BenchTls.make(work_dir / "tls") if options.tls else None
        services = [
            engine_spec(work_dir / "engine", engine_port),
            ledger_spec(database_url, engine_address, ledger_port, ingest=True),
        ]
        if options.market_data:
            services += market_data_specs(engine_address, ledger_address, redis.url)
        if tls is not None:
            services = [tls.grpc_service(spec) for spec in services]
        specs = [*stores, redis.spec(), *services]
        gateways = [
            gateway_spec(
                gateway_port,
                engine_address,
                ledger_address,
                redis.url,
                name=_gateway_name(i),
                reuse_port=options.gateways > 1,
            )
            for i in range(options.gateways)
        ]
        if tls is not None:
            gateways = [tls.gateway(spec) for spec in gateways]
        # The port answers once the first replica listens: the others' readiness is their
        # own listening socket, checked below.
        specs += [gateways[0], *(replace(g, ready_probe=None) for g in gateways[1:])]
        base = f"{'https' if tls else 'http'}://{LOCALHOST}:{gateway_port}"
        client_tls = tls.client_context() if tls is not None else None
        connector = aiohttp.TCPConnector(
            limit=SIGNUP_CONCURRENCY * 3,  # the set-up's
            ssl=client_tls if client_tls is not None else True,
        )
        channel = grpc.aio.insecure_channel if tls is None else tls.channel
        async with (
            Supervisor(specs, prefix_output=False) as supervisor,
            channel(engine_address) as engine_channel,
            channel(ledger_address) as ledger_channel,
            aiohttp.ClientSession(connector=connector, trust_env=False) as session,
        ):
            pids = {spec.name: supervisor.pid(spec.name) for spec in specs}
            await _all_listen([pids[g.name] for g in gateways], gateway_port)
            load_before = [round(x, 2) for x in os.getloadavg()]
            setup_started = time.perf_counter()
            traders = await make_traders(session, base, options.users)
            setup_seconds = time.perf_counter() - setup_started
            bench = Bench(
                options,
                gateway_port,
                traders,
                epb_grpc.EngineServiceStub(engine_channel),
                lpb_grpc.LedgerServiceStub(ledger_channel),
                CpuMeter(pids),
                client_tls,
            )
            modes = {mode: await bench.mode(mode) for mode in options.modes}
            profile = None
            if options.profile_dir is not None:
                profile = await bench.profile(pids, options.profile_dir)
    return {
        "clients": options.clients,
        "users": options.users,
        "seconds": options.seconds,
        "warmup_seconds": WARMUP_SECONDS,
        "batch_clients": options.batch_clients,
        "batch_size": options.batch_size,
        "engine_journal_fsync": True,
        "market_data": options.market_data,
        "setup_seconds": round(setup_seconds, 3),
        "cpu_cores": len(os.sched_getaffinity(0)),
        "gateways": options.gateways,
        "tls": options.tls,
        "modes": modes,
        "profile": profile,
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.orders", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=10.0, help="per mode")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--users", type=int, default=64, help="users (keys) the clients share")
    parser.add_argument("--batch-clients", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=100, help="orders per batch request")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy the services")
    parser.add_argument("--database-url", help="an empty database to use instead of a local one")
    parser.add_argument(
        "--no-market-data",
        dest="market_data",
        action="store_false",
        help="leave out the publisher and stream_svc",
    )
    parser.add_argument(
        "--gateways", type=int, default=1, help="gateway processes sharing one port"
    )
    parser.add_argument(
        "--tls", action="store_true", help="HTTPS at the gateway, mutual TLS between services"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.batch_clients < 1 or args.seconds <= 0 or args.gateways < 1:
        parser.error("--clients, --batch-clients, --seconds and --gateways must be positive")
    if args.users < 2:
        parser.error("--users must be at least 2: buyers and sellers")
    if not 1 <= args.batch_size <= 100:
        parser.error("--batch-size must be between 1 and 100 (the gateway's limit)")
    options = Options(
        clients=args.clients,
        seconds=args.seconds,
        modes=tuple(dict.fromkeys(args.modes)),
        users=min(args.users, max(2, args.clients, args.batch_clients)),
        batch_clients=args.batch_clients,
        batch_size=args.batch_size,
        seed=args.seed,
        profile_dir=args.profile,
        database_url=args.database_url,
        market_data=args.market_data,
        gateways=args.gateways,
        tls=args.tls,
    )
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(options))
    if args.json:
        print(orjson.dumps(result).decode())
    else:
        _print(result)
    failed = [m for m, r in result["modes"].items() if not r["orders"] and m in ORDER_MODES]
    return 1 if failed else 0


def _print(r: dict[str, Any]) -> None:
    tls = "; HTTPS and mutual TLS" if r["tls"] else ""
    print(f"{r['users']} users; {r['seconds']} s per mode on {r['cpu_cores']} cores{tls}")
    for mode, m in r["modes"].items():
        rate = f"{m['orders_per_second']:>8,} orders/s" if mode in ORDER_MODES else ""
        print(
            f"{mode:<7} {m['clients']:>5} clients {m['requests_per_second']:>8,} requests/s "
            f"{rate} p50 {m['p50_ms']} ms p99 {m['p99_ms']} ms p99.9 {m['p99_9_ms']} ms "
            f"statuses {m['statuses']}"
        )
        print("        CPU s: " + ", ".join(f"{k} {v}" for k, v in m["cpu_seconds"].items()))
        if "cpu_ms_per_order" in m:
            print(
                "        CPU ms per order: "
                + ", ".join(f"{k} {v}" for k, v in m["cpu_ms_per_order"].items())
                + f"; total {m['cpu_ms_per_order_total']} (at most "
                f"{m['orders_per_second_at_full_cpu']:,} orders/s on {r['cpu_cores']} cores; "
                f"{m['target_orders_per_second']:,}/s would take "
                f"{m['cores_needed_at_target']} cores)"
            )
    if r["profile"]:
        for name in PROFILED:
            if name not in r["profile"]:
                continue
            p = r["profile"][name]
            print(f"{name} profile ({p['samples']} samples), own time:")
            for function, percent in p.get("own_percent", [])[:10]:
                print(f"  {percent:5.1f}%  {function}")


if __name__ == "__main__":
    sys.exit(main())
