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
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import grpc
import orjson

from bench.machine import CpuMeter
from bench.services import (
    BACKENDS,
    LOCALHOST,
    engine_spec,
    ledger_spec,
    postgres_specs,
    server_settings,
)
from bench.workload import PRICE_DECIMALS, QTY_DECIMALS, Add, generate
from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1 import engine_pb2_grpc as epb_grpc
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.ledger.v1 import ledger_pb2_grpc as lpb_grpc
from launcher.ports import free_port
from launcher.postgres import create_database, maintenance_url, quote_identifier
from launcher.supervisor import Supervisor
from tradekit.money import format_units

MARKET = "TATA_INR"  # the workload's prices (tick 0.1) and quantities (step 1) fit it
USERS = 200  # buyers are the first half, sellers the second: no order meets its own user
DEPOSITS = (("INR", "10000000000"), ("TATA", "100000000"))
POLL_SECONDS = 0.05
CATCH_UP_TIMEOUT_SECONDS = 600.0


# -- commands -------------------------------------------------------------------------------


def _owner(order_id: int, buy: bool) -> int:
    half = USERS // 2
    return 1 + order_id % half + (0 if buy else half)


def funding_batch() -> epb.CommandBatch:
    commands = [
        epb.Command(deposit=epb.DepositRequest(user_id=user, asset=asset, amount=amount))
        for user in range(1, USERS + 1)
        for asset, amount in DEPOSITS
    ]
    return epb.CommandBatch(commands=commands)


def workload_batches(commands: int, seed: int, batch: int) -> list[epb.CommandBatch]:
    """The workload as ready-made request batches, built before the clock starts.

    Adds carry the workload id as client order id, and cancels name it with the order's
    owner, as a client would that does not wait for replies.
    """
    owners: dict[int, int] = {}
    built: list[epb.Command] = []
    for request_id, op in enumerate(generate(commands, seed)):
        if isinstance(op, Add):
            owners[op.id] = user = _owner(op.id, op.buy)
            place = epb.PlaceOrderRequest(
                user_id=user,
                market=MARKET,
                side=cpb.SIDE_BUY if op.buy else cpb.SIDE_SELL,
                type=cpb.ORDER_TYPE_LIMIT,
                price=format_units(op.price, PRICE_DECIMALS),
                quantity=format_units(op.qty, QTY_DECIMALS),
                time_in_force=cpb.TIME_IN_FORCE_GTC,
                client_order_id=op.id,
            )
            built.append(epb.Command(request_id=request_id, place_order=place))
        else:
            cancel = epb.CancelOrderRequest(
                user_id=owners.pop(op.id), market=MARKET, client_order_id=op.id
            )
            built.append(epb.Command(request_id=request_id, cancel_order=cancel))
    return [epb.CommandBatch(commands=built[i : i + batch]) for i in range(0, len(built), batch)]


# -- the engine's side: acknowledgements ----------------------------------------------------


@dataclass
class Acks:
    """When the engine acknowledged which seq, and what the replies said."""

    times: list[float] = field(default_factory=list)  # perf_counter() at each reply batch
    seqs: list[int] = field(default_factory=list)  # the highest seq acknowledged by then
    trades: int = 0
    rejections: int = 0
    first_rejection: str = ""

    @property
    def last_seq(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    def record(self, replies: epb.ReplyBatch) -> None:
        top = self.last_seq
        for reply in replies.replies:
            code, message, seq = _outcome(reply)
            if code:
                self.rejections += 1
                self.first_rejection = self.first_rejection or message
            top = max(top, seq)
            self.trades += len(reply.place_order.fills)
        self.times.append(time.perf_counter())
        self.seqs.append(top)


def _outcome(reply: epb.Reply) -> tuple[int, str, int]:
    """(result code, message, seq) of a reply, whichever command it answers."""
    kind = reply.WhichOneof("body")
    if kind == "place_order":
        p = reply.place_order
        return p.code, p.message, p.seq
    if kind == "cancel_order":
        c = reply.cancel_order
        return c.code, c.message, c.seq
    if kind == "balance":
        b = reply.balance
        return b.code, b.message, b.seq
    raise ValueError(f"unexpected reply {kind!r}")


async def execute(
    stub: epb_grpc.EngineServiceAsyncStub,
    batches: Sequence[epb.CommandBatch],
    acks: Acks,
    in_flight: int,
) -> None:
    """Send `batches` over one Execute stream, `in_flight` of them unanswered at most."""
    slots = asyncio.Semaphore(in_flight)

    async def requests() -> AsyncIterator[epb.CommandBatch]:
        for batch in batches:
            await slots.acquire()
            yield batch

    async for replies in stub.Execute(requests()):
        acks.record(replies)
        slots.release()


# -- the ledger's side: what it has stored --------------------------------------------------


@dataclass
class IngestWatch:
    """Samples of the ledger's last stored seq over time, one per poll.

    `poll()` runs until `target` is set and stored; it may be set while it runs, so one
    task covers the whole burst without knowing its end in advance.
    """

    stub: lpb_grpc.LedgerServiceAsyncStub
    target: int | None = None
    times: list[float] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)

    async def poll(self) -> float:
        """Return when the ledger was seen to have stored `target` (perf_counter).

        The time is taken when the reply arrives: the latest the ledger could have stored
        it, never earlier than it did.
        """
        while True:
            status = await self.stub.GetIngestStatus(lpb.GetIngestStatusRequest())
            now = time.perf_counter()
            self.times.append(now)
            self.seqs.append(status.last_seq)
            if self.target is not None and status.last_seq >= self.target:
                return now
            await asyncio.sleep(POLL_SECONDS)

    async def until(self, seq: int, timeout: float = CATCH_UP_TIMEOUT_SECONDS) -> float:  # noqa: ASYNC109
        """Set the target and wait for it, failing with where the ledger stands."""
        self.target = seq
        return await self.wait(asyncio.ensure_future(self.poll()), timeout)

    async def wait(self, poller: asyncio.Future[float], timeout: float) -> float:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                return await poller
        except TimeoutError:
            stored = self.seqs[-1] if self.seqs else 0
            raise RuntimeError(
                f"the ledger did not store event {self.target} within {timeout:g} s "
                f"(it is at {stored})"
            ) from None


def max_lag(acks: Acks, watch: IngestWatch) -> float:
    """The longest time from the engine acknowledging a seq to the ledger having it stored.

    Both series rise, so one pass matches each acknowledgement with the first poll that
    saw its seq stored. A seq stored before its reply arrived counts as no lag.
    """
    worst, j = 0.0, 0
    for acked_at, seq in zip(acks.times, acks.seqs, strict=True):
        while watch.seqs[j] < seq:
            j += 1  # the watch ran until the last seq was stored: j stays in range
        worst = max(worst, watch.times[j] - acked_at)
    return worst


def max_backlog(acks: Acks, watch: IngestWatch, since: float) -> int:
    """The most events acknowledged by the engine but not yet stored, at any poll."""
    worst = 0
    for polled_at, stored in zip(watch.times, watch.seqs, strict=True):
        if polled_at < since:
            continue
        i = bisect.bisect_right(acks.times, polled_at)
        if i:
            worst = max(worst, acks.seqs[i - 1] - stored)
    return worst


# -- the run --------------------------------------------------------------------------------


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
    parser.add_argument(
        "--backend", choices=BACKENDS, default="plain",
        help="the local server: plain PostgreSQL, or preloading TimescaleDB (`make deps`)",
    )  # fmt: skip
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
