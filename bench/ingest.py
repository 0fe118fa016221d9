"""Ingest throughput and lag: a burst of orders into the engine, the ledger keeping up.

`python -m bench.ingest --commands 200000 --json` runs PostgreSQL (durable
settings: the defaults of initdb, fsync and synchronous commit on), the engine (journal
fsync on) and the ledger as child processes in a temporary directory, funds the users,
waits until the ledger has stored that, then replays a seeded workload of `--commands`
adds and cancels (bench.workload, one market) into the engine as fast as it takes
them, over one `Execute` stream. Meanwhile it polls the ledger's GetIngestStatus every
POLL_SECONDS, and it records when the engine acknowledged which seq (from the replies).

It reports the events of the burst, the engine's event rate, the ledger's ingest rate
(the burst's events over the time from its first command until the ledger had stored
them all), the maximum lag (seconds between the engine acknowledging seq s and the
ledger having stored s; the poll interval bounds its resolution), the largest backlog
in events, and the catch-up time after the last acknowledgement. At the end it checks
that the ledger stands exactly at the engine's seq and stored every trade, and reports
the PostgreSQL settings that were in effect and the CPU seconds each process used during
the burst (the services share the machine's cores, which bounds both rates).

Last, `replay`: a second ledger on an empty database of the same server ingests the whole
history while the engine is idle. That is the ledger's own rate, apart from the burst.

Cancels name their order by client order id (the workload's own id), so the stream never
waits for an add's reply to learn the engine's order id. `--database-url` uses an existing
server's (empty) database instead of starting PostgreSQL; the query benchmark
(ledger_svc.bench_queries) starts the services the same way (bench/services.py).

Beside this module, which runs it: bench/burst.py builds and sends the engine's commands,
bench/ingest_watch.py follows what the ledger has stored.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import grpc
import orjson

from bench.burst import MARKET, Acks, execute, funding_batch, workload_batches
from bench.ingest_watch import (
    CATCH_UP_TIMEOUT_SECONDS,
    POLL_SECONDS,
    IngestWatch,
    max_backlog,
    max_lag,
)
from bench.machine import CpuMeter
from bench.services import (
    LOCALHOST,
    add_backend_option,
    engine_spec,
    ledger_spec,
    postgres_specs,
    server_settings,
)
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1 import engine_pb2_grpc as epb_grpc
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.ledger.v1 import ledger_pb2_grpc as lpb_grpc
from launcher.ports import free_port
from launcher.postgres import create_database, maintenance_url, quote_identifier
from launcher.supervisor import Supervisor


@dataclass(frozen=True)
class Options:
    commands: int
    seed: int = 1
    batch: int = 256
    in_flight: int = 4
    database_url: str | None = None
    backend: str = "plain"


async def run(options: Options) -> dict[str, Any]:
    batches = workload_batches(options.commands, options.seed, options.batch)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work_dir = Path(tmp)
        stores, database_url = postgres_specs(options.database_url, work_dir, {}, options.backend)
        engine_port, ledger_port = free_port(), free_port()
        engine_address = f"{LOCALHOST}:{engine_port}"
        specs = [
            *stores,
            engine_spec(work_dir / "engine", engine_port),
            ledger_spec(database_url, engine_address, ledger_port, ingest=True),
        ]
        async with (
            Supervisor(specs, prefix_output=False) as supervisor,
            grpc.aio.insecure_channel(engine_address) as engine_channel,
            grpc.aio.insecure_channel(f"{LOCALHOST}:{ledger_port}") as ledger_channel,
        ):
            engine = epb_grpc.EngineServiceStub(engine_channel)
            ledger = lpb_grpc.LedgerServiceStub(ledger_channel)
            cpu = CpuMeter({spec.name: supervisor.pid(spec.name) for spec in specs})
            result = await _measure(engine, ledger, batches, options.in_flight, cpu)
            result["verified"] = await _verify(engine, ledger, database_url, result)
            result["postgres_settings"] = await server_settings(database_url)
            pids = {name: pid for name, pid in cpu.pids.items() if name != "ledger"}
            result["replay"] = await replay(
                database_url, engine_address, result["engine_seq"], pids
            )
    return {
        "commands": options.commands,
        "seed": options.seed,
        "batch": options.batch,
        "in_flight_batches": options.in_flight,
        "engine_journal_fsync": True,
        "poll_interval_seconds": POLL_SECONDS,
        **result,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


async def _measure(
    engine: epb_grpc.EngineServiceAsyncStub,
    ledger: lpb_grpc.LedgerServiceAsyncStub,
    batches: Sequence[epb.CommandBatch],
    in_flight: int,
    cpu: CpuMeter,
) -> dict[str, Any]:
    """Fund, let the ledger store that, then the burst; the figures of the burst."""
    funding = Acks()
    await execute(engine, [funding_batch()], funding, in_flight=1)
    if funding.rejections:
        raise RuntimeError(f"funding rejected: {funding.first_rejection}")
    watch = IngestWatch(ledger)
    await watch.until(funding.last_seq)

    load_before = [round(x, 2) for x in os.getloadavg()]
    cpu_before = cpu.sample()
    acks = Acks(seqs=[funding.last_seq], times=[time.perf_counter()])
    started = acks.times[0]
    watch.target = None  # the burst's end is not known yet
    poller = asyncio.create_task(watch.poll())
    await execute(engine, batches, acks, in_flight)
    last_ack = acks.times[-1]
    watch.target = acks.last_seq
    caught_up = await watch.wait(poller, CATCH_UP_TIMEOUT_SECONDS)
    cpu_seconds = cpu.since(cpu_before)

    events = acks.last_seq - funding.last_seq
    return {
        "events": events,
        "events_per_command": round(events / max(1, sum(len(b.commands) for b in batches)), 3),
        "trades": acks.trades,
        "rejections": acks.rejections,
        "engine_seconds": round(last_ack - started, 3),
        "engine_events_per_second": round(events / (last_ack - started)),
        "ingest_seconds": round(caught_up - started, 3),
        "ingest_events_per_second": round(events / (caught_up - started)),
        "max_lag_seconds": round(max_lag(acks, watch), 3),
        "max_backlog_events": max_backlog(acks, watch, started),
        "catch_up_seconds": round(caught_up - last_ack, 3),
        "cpu_seconds": cpu_seconds,  # from the first command until the ledger caught up
        "cpu_cores": len(os.sched_getaffinity(0)),
        "load_average_before": load_before,
        "engine_seq": acks.last_seq,
    }


async def replay(
    database_url: str, engine_address: str, seq: int, pids: dict[str, int]
) -> dict[str, Any]:
    """A second ledger, on an empty database of the same server, ingests the whole history
    up to `seq` while the engine is idle: the ledger's own rate, with no burst competing
    for the CPU. The rate runs from the first poll, once the ledger is up, to the last."""
    url = urlsplit(database_url)._replace(path=f"{urlsplit(database_url).path}_replay").geturl()
    await create_database(url)
    port = free_port()
    try:
        spec = ledger_spec(url, engine_address, port, ingest=True, name="ledger-replay")
        async with (
            Supervisor([spec], prefix_output=False) as supervisor,
            grpc.aio.insecure_channel(f"{LOCALHOST}:{port}") as channel,
        ):
            cpu = CpuMeter({**pids, "ledger": supervisor.pid(spec.name)})
            before = cpu.sample()
            watch = IngestWatch(lpb_grpc.LedgerServiceStub(channel))
            done = await watch.until(seq)
            cpu_seconds = cpu.since(before)
    finally:
        await _drop_database(url)
    events, seconds = seq - watch.seqs[0], done - watch.times[0]
    return {
        "events": events,
        "seconds": round(seconds, 3),
        # None when it was done before the first poll (a tiny history).
        "events_per_second": round(events / seconds) if events > 0 else None,
        "cpu_seconds": cpu_seconds,
    }


async def _drop_database(url: str) -> None:
    name = unquote(urlsplit(url).path.lstrip("/"))
    conn = await asyncpg.connect(maintenance_url(url))
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
    finally:
        await conn.close()


async def _verify(
    engine: epb_grpc.EngineServiceAsyncStub,
    ledger: lpb_grpc.LedgerServiceAsyncStub,
    database_url: str,
    result: dict[str, Any],
) -> bool:
    """The ledger stands exactly at the engine's seq, and stored every trade of the burst."""
    depth = await engine.GetDepth(epb.GetDepthRequest(market=MARKET, limit=1))
    status = await ledger.GetIngestStatus(lpb.GetIngestStatusRequest())
    conn = await asyncpg.connect(database_url)
    try:
        stored_trades = await conn.fetchval("SELECT count(*) FROM trades")
        cursor = await conn.fetchval("SELECT last_seq FROM ingest_cursor")
    finally:
        await conn.close()
    result.update(
        engine_seq=depth.seq,
        ledger_last_seq=status.last_seq,
        stored_trades=stored_trades,
    )
    return bool(depth.seq == status.last_seq == cursor and stored_trades == result["trades"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--commands", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=256, help="commands per Execute batch")
    parser.add_argument("--in-flight", type=int, default=4, help="unanswered batches at most")
    parser.add_argument("--database-url", help="an empty database to use instead of a local one")
    add_backend_option(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.commands <= 0:
        parser.error("--commands must be positive")
    options = Options(
        args.commands, args.seed, args.batch, args.in_flight, args.database_url, args.backend
    )
    result = asyncio.run(run(options))
    if args.json:
        print(orjson.dumps(result).decode())
    else:
        _print(result)
    return 0 if result["verified"] and not result["rejections"] else 1


def _print(r: dict[str, Any]) -> None:
    print(f"{r['events']:,} events ({r['trades']:,} trades) from {r['commands']:,} commands")
    print(f"engine  {r['engine_events_per_second']:>9,} events/s over {r['engine_seconds']} s")
    print(f"ingest  {r['ingest_events_per_second']:>9,} events/s over {r['ingest_seconds']} s")
    print(f"max lag {r['max_lag_seconds']} s ({r['max_backlog_events']:,} events behind)")
    print(f"caught up {r['catch_up_seconds']} s after the last acknowledgement")
    print(
        f"ledger at {r['ledger_last_seq']}, engine at {r['engine_seq']}: verified {r['verified']}"
    )
    cpu = ", ".join(f"{name} {seconds} s" for name, seconds in r["cpu_seconds"].items())
    print(f"CPU over {r['ingest_seconds']} s on {r['cpu_cores']} cores: {cpu}")
    replay = r["replay"]
    print(
        f"replay  {replay['events_per_second'] or 0:>9,} events/s: a second ledger, engine idle "
        f"(CPU {replay['cpu_seconds']})"
    )
    print("postgres " + ", ".join(f"{k}={v}" for k, v in r["postgres_settings"].items()))


if __name__ == "__main__":
    sys.exit(main())
