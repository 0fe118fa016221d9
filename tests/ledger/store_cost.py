"""What storing one ingest batch costs the ledger and PostgreSQL, apart from everything else.

Not a test: a measuring tool beside them (it reuses their engine and random trader).
`python -m tests.ledger.store_cost --batches 300 --events 30` runs an engine in this
process and a local PostgreSQL (durable settings), trades until the engine has made
`--batches` x `--events` events more than the set-up's, projects them into batches of
`--events` (30 is what the order benchmark's single orders give per 10 ms linger at
~1,000 orders/s: about a dozen orders and their fills), then stores them one after the
other through `ledger_svc.writer.store`, timing only that. It prints per batch the ledger's
CPU (this process), PostgreSQL's (its processes, from /proc) and the wall time.
`--copy-from-rows N` passes that threshold to `store`. Under `strace -f -e
trace=sendto,recvfrom,write`, the socket calls between the `stores begin` and `stores end`
lines it writes to stderr are the batches' round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import orjson

from bench.machine import CpuMeter
from launcher.ports import free_port
from launcher.postgres import LocalPostgres
from launcher.supervisor import Supervisor
from ledger_svc.migrate import migrate, timescale_in_use
from ledger_svc.projection import Batch, Catalog, project
from ledger_svc.writer import COPY_FROM_ROWS, store
from tests.engine.conftest import running_engine
from tests.ledger.events import all_events
from tests.ledger.trading import Trader


async def make_batches(work_dir: Path, batches: int, events: int) -> list[Batch]:
    """The set-up's batch (listings, deposits), then `batches` batches of `events` events."""
    async with running_engine(work_dir, fsync=False) as engine:
        trader = Trader(engine.stub, seed=5)
        await trader.fund()
        while engine.runtime.engine.seq < (batches + 1) * events:
            await trader.run(100)
        made = await all_events(engine.stub, engine.runtime.engine.seq)
    catalog, first = Catalog(), len(made) - batches * events
    out = [project(made[:first], catalog, 1)]
    for start in range(first, len(made), events):
        out.append(project(made[start : start + events], catalog, start + 1))
    return out


async def run(batches: int, events: int, copy_from_rows: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="store-cost-") as tmp:
        projected = await make_batches(Path(tmp) / "engine", batches, events)
        server = LocalPostgres(Path(tmp) / "postgres", free_port(), database="cost")
        async with Supervisor([server.spec()], prefix_output=False) as supervisor:
            conn = await asyncpg.connect(server.url)
            try:
                await migrate(conn)
                candles = not await timescale_in_use(conn)
                await store(conn, projected[0], candles=candles)
                meter = CpuMeter({"postgres": supervisor.pid("postgres")})
                before, cpu, started = meter.sample(), time.process_time(), time.perf_counter()
                print("stores begin", file=sys.stderr, flush=True)
                for batch in projected[1:]:
                    await store(conn, batch, candles=candles, copy_from_rows=copy_from_rows)
                print("stores end", file=sys.stderr, flush=True)
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu
                postgres = meter.since(before)["postgres"]
            finally:
                await conn.close()
    per = 1000 / max(1, batches)
    return {
        "batches": batches,
        "events_per_batch": events,
        "orders": sum(len(b.new_orders) for b in projected[1:]),
        "trades": sum(len(b.trades) for b in projected[1:]),
        "ledger_cpu_ms_per_batch": round(cpu * per, 3),
        "postgres_cpu_ms_per_batch": round(postgres * per, 3),
        "wall_ms_per_batch": round(wall * per, 3),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.ledger.store_cost")
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--events", type=int, default=30, help="events per batch")
    parser.add_argument("--copy-from-rows", type=int, default=COPY_FROM_ROWS)
    args = parser.parse_args(argv)
    print(orjson.dumps(asyncio.run(run(args.batches, args.events, args.copy_from_rows))).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
