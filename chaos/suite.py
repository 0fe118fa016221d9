"""Trials: seeded load and faults for a while, then quiet, then every check.

One stack serves every trial of a run (its history grows and each check covers all of it).
A trial: the users trade, custody reports deposits and operators decide withdrawals while
the faults of its plan are injected one by one; the load stops; every service is waited
for; custody and operators drain (every transfer credited, every withdrawal ended); the
market maker and the simulated traders are frozen (SIGSTOP) so that nothing trades during
the checks, and thawed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg
import grpc

from chaos.capital_checks import check_capital, check_capital_engine
from chaos.checks import (
    Findings,
    check_acknowledgements,
    check_engine,
    check_postgres,
    check_streamed_books,
    check_streamed_trades,
)
from chaos.custody import Custody, Operators
from chaos.depth import DepthWatcher
from chaos.faults import KILL_TARGETS, OVERLAP_PAIRS, Deck, Fault, Injected, Injector, plan
from chaos.journal import Truth, read_truth
from chaos.load import MARKETS, Prices, Trader, sign_up
from chaos.record import Record
from chaos.stack import ChaosStack, chaos_stack
from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1.engine_pb2_grpc import EngineServiceStub
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceStub
from launcher.supervisor import Supervisor
from tradekit.markets import ONRAMP_NETWORK

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub
    from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceAsyncStub

log = logging.getLogger("chaos")

# Reconnect soon after a restart (gRPC's default backoff grows to two minutes).
CHANNEL_OPTIONS = [
    ("grpc.enable_http_proxy", 0),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
QUIET = ("mm", "flow")  # frozen during the checks
CATCH_UP_TIMEOUT = 300.0
# The WebSocket subscribers: the gateway's interval frames and real time (the connection's
# query), each with one trade a frame and with trade@<M>@batch.
SUBSCRIBERS = {
    "interval": ("", False),
    "real_time": ("?interval=0", False),
    "interval_batch": ("", True),
    "real_time_batch": ("?interval=0", True),
}


@dataclass(frozen=True)
class Config:
    seconds: float  # run trials until this much time has passed (at least one trial)
    seed: int
    trial_seconds: float = 45.0  # load per trial
    users: int = 10
    kills: int = 3  # per trial
    freezes: int = 1
    overlaps: int = 1  # per trial: pairs of kills, the second while the first restarts
    faults: Sequence[Fault] | None = None  # one fixed plan for every trial instead
    max_trials: int | None = None
    timescale: bool = False  # the ledger on TimescaleDB rather than plain PostgreSQL


@dataclass
class Trial:
    faults: list[Injected]
    findings: Findings
    last_seq: int
    seconds: float
    check_seconds: float
    stats: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


@dataclass
class Run:
    config: Config
    trials: list[Trial]
    record: Record
    watchers: dict[str, DepthWatcher]  # by name (SUBSCRIBERS)
    setup_seconds: float
    backend: str  # what the ledger's database runs on, as read from it


@dataclass
class Exchange:
    """The running stack and the clients the suite holds on it."""

    stack: ChaosStack
    supervisor: Supervisor
    http: aiohttp.ClientSession
    engine: EngineServiceAsyncStub
    ledger: LedgerServiceAsyncStub


@dataclass
class Capital:
    """Custody and operators, across the run's trials."""

    custody: Custody
    operators: Operators


@contextlib.asynccontextmanager
async def running(root: Path, timescale: bool) -> AsyncIterator[Exchange]:
    stack = chaos_stack(root, timescale)
    async with (
        stack.supervisor() as supervisor,
        aiohttp.ClientSession(trust_env=False) as http,
        grpc.aio.insecure_channel(stack.engine_address, options=CHANNEL_OPTIONS) as engine,
        grpc.aio.insecure_channel(stack.ledger_address, options=CHANNEL_OPTIONS) as ledger,
    ):
        yield Exchange(
            stack, supervisor, http, EngineServiceStub(engine), LedgerServiceStub(ledger)
        )


async def run_suite(config: Config, root: Path) -> Run:
    started = time.monotonic()
    async with running(root, config.timescale) as ex:
        record = Record()
        injector = Injector(ex.supervisor, ex.stack.specs)
        prices = Prices(ex.http, ex.stack.gateway_url)
        traders = await _traders(ex, config, prices, record)
        capital = await _capital(ex, config, traders, record)
        markets = [m.symbol for m in MARKETS]
        watchers = {
            name: DepthWatcher(ex.http, ex.stack.gateway_url, markets, query, batched)
            for name, (query, batched) in SUBSCRIBERS.items()
        }
        watching = [
            asyncio.create_task(w.run(), name=f"{name} subscriber") for name, w in watchers.items()
        ]
        setup = time.monotonic() - started
        backend = await _backend(ex.stack.database_url)
        log.info("stack up on %s and %d users funded in %.1fs", backend, len(traders), setup)
        deck = Deck(random.Random(config.seed), KILL_TARGETS)
        pairs = Deck(random.Random(f"{config.seed}-pairs"), OVERLAP_PAIRS)
        trials: list[Trial] = []
        try:
            while not trials or (
                time.monotonic() - started < config.seconds
                and (config.max_trials is None or len(trials) < config.max_trials)
            ):
                trial_seed = config.seed * 1000 + len(trials)
                faults = config.faults or plan(
                    random.Random(trial_seed), deck, config.trial_seconds, config.kills,
                    config.freezes, config.overlaps, pairs,
                )  # fmt: skip
                trial = await _trial(
                    ex, injector, traders, capital, prices, faults, config, record, watchers
                )
                trial.seed = trial_seed
                trials.append(trial)
                log.info("trial %d (seed %d): %d faults, findings %s, %d events",
                         len(trials), trial_seed, len(trial.faults),
                         dict(trial.findings.counts) or "none", trial.last_seq)  # fmt: skip
        finally:
            for task in watching:
                task.cancel()
            await asyncio.gather(*watching, return_exceptions=True)
    return Run(config, trials, record, watchers, setup, backend)


async def _backend(database_url: str) -> str:
    """ "timescaledb VERSION" where the ledger's migrations made the extension, else "plain"."""
    connection = await asyncpg.connect(database_url)
    try:
        version = await connection.fetchval(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        )
    finally:
        await connection.close()
    return "plain" if version is None else f"timescaledb {version}"


async def _traders(ex: Exchange, config: Config, prices: Prices, record: Record) -> list[Trader]:
    traders = []
    for index in range(config.users):
        client = await sign_up(
            ex.http,
            ex.stack.gateway_url,
            f"chaos-{config.seed}-{index}@example.com",
            api_key=index % 2 == 0,
        )
        rng = random.Random(f"{config.seed}-{index}")
        traders.append(Trader(client, rng, prices, record, ex.engine, ex.stack.admin_token))
    await asyncio.gather(*(t.fund() for t in traders))
    return traders


async def _capital(ex: Exchange, config: Config, traders: list[Trader], record: Record) -> Capital:
    networks = await ex.engine.ListNetworks(
        epb.ListNetworksRequest(), timeout=30, wait_for_ready=True
    )
    required = {n.network: n.confirmations for n in networks.networks}
    users = {t.client.user_id for t in traders}
    token = ex.stack.admin_token
    return Capital(
        Custody(ex.engine, token, traders, record, config.seed, required),
        Operators(ex.engine, token, users, record, config.seed),
    )


async def _trial(
    ex: Exchange,
    injector: Injector,
    traders: list[Trader],
    capital: Capital,
    prices: Prices,
    faults: Sequence[Fault],
    config: Config,
    record: Record,
    watchers: dict[str, DepthWatcher],
) -> Trial:
    started = time.monotonic()
    stop = asyncio.Event()
    load = [asyncio.create_task(t.run(stop)) for t in traders]
    load.append(asyncio.create_task(prices.follow(stop)))
    load.append(asyncio.create_task(capital.custody.run(stop)))
    load.append(asyncio.create_task(capital.operators.run(stop)))
    try:
        injected = await injector.run(faults)
        await asyncio.sleep(max(0.0, started + config.trial_seconds - time.monotonic()))
    finally:
        stop.set()
        await asyncio.gather(*load)
    loaded = time.monotonic() - started

    await injector.all_ready()
    await capital.custody.drain()
    await capital.operators.drain()
    checking = time.monotonic()
    with frozen(ex.supervisor, QUIET):
        last_seq = await _quiet_seq(ex.engine)
        await _ledger_caught_up(ex.ledger, last_seq)
        truth = await read_truth(ex.engine, last_seq)
        findings = Findings()
        users = {t.client.user_id for t in traders}
        check_acknowledgements(record, truth, users, findings)
        check_capital(record, truth, users, findings)
        stored = await check_postgres(ex.stack.database_url, truth, findings)
        await check_engine(ex.engine, ex.ledger, truth, findings)
        await check_capital_engine(ex.engine, truth, findings)
        for name, watcher in watchers.items():
            await check_streamed_books(watcher, findings)
            check_streamed_trades(name, watcher, truth, findings)
    for name, watcher in watchers.items():
        if watcher.gaps:
            findings.add(
                "stream", f"{name}: {watcher.gaps} depth gaps seen by the subscriber so far"
            )
        if watcher.empty_batches:
            findings.add("stream", f"{name}: {watcher.empty_batches} trade batch frames "
                                   "without a trade so far")  # fmt: skip
        if watcher.errors:
            findings.add("stream", f"{name}: error frames on subscribed streams so far: "
                                   f"{watcher.errors[:3]}")  # fmt: skip
    stats = {
        "trades": len(truth.trades),
        "orders": len(truth.orders),
        "triggers": len(truth.triggers),
        "triggers_fired": sum(1 for t in truth.triggers.values() if t.fired),
        "trigger_legs": sum(1 for t in truth.triggers.values() if t.parent),
        **capital_stats(truth),
        **stored,
    }
    return Trial(injected, findings, last_seq, loaded, time.monotonic() - checking, stats)


def capital_stats(truth: Truth) -> dict[str, int]:
    ws = truth.capital_withdrawals.values()
    return {
        "deposits_credited": sum(
            1
            for (network, _), d in truth.capital_deposits.items()
            if d.credits and network != ONRAMP_NETWORK
        ),
        "withdrawals": len(ws),
        "withdrawals_held": sum(1 for w in ws if w.held),
        "withdrawals_confirmed": sum(1 for w in ws if w.status == cpb.WITHDRAWAL_STATUS_CONFIRMED),
        "withdrawals_declined": sum(1 for w in ws if w.status == cpb.WITHDRAWAL_STATUS_DECLINED),
    }


@contextlib.contextmanager
def frozen(supervisor: Supervisor, names: Sequence[str]) -> Iterator[None]:
    groups = [supervisor.pid(name) for name in names]
    for group in groups:
        os.killpg(group, signal.SIGSTOP)
    try:
        yield
    finally:
        for group in groups:
            os.killpg(group, signal.SIGCONT)


async def _quiet_seq(engine: EngineServiceAsyncStub) -> int:
    """The engine's last seq once it stops moving (replies to frozen clients may still be
    in its queue)."""
    previous = -1
    while True:
        status = await engine.GetStatus(epb.GetStatusRequest(), timeout=30, wait_for_ready=True)
        if status.seq == previous and not status.queued_commands:
            return int(status.seq)
        previous = status.seq
        await asyncio.sleep(1.0)


async def _ledger_caught_up(ledger: LedgerServiceAsyncStub, seq: int) -> None:
    async with asyncio.timeout(CATCH_UP_TIMEOUT):
        while True:
            with contextlib.suppress(grpc.aio.AioRpcError):
                status = await ledger.GetIngestStatus(
                    lpb.GetIngestStatusRequest(), timeout=10, wait_for_ready=True
                )
                if status.last_seq >= seq:
                    return
            await asyncio.sleep(0.1)
