"""The engine benchmark: replays a workload through the full engine core.

    python -m engine_svc.bench --workload FILE [--json] [--verify] [--journal DIR]
                               [--warmup N] [--profile FILE]

Every line of the workload (see `engine_svc.workload`) becomes a PlaceOrder
(limit GTC) or CancelOrder for one market, BASE_QUOTE, tick 0.1, step 1, maker
fee MAKER_FEE_BPS and taker fee TAKER_FEE_BPS, and goes through `Engine.apply`:
validation, risk checks and locking, matching, settlement with fees, events.
Buyers are users 1..500 and sellers 501..1000 (picked from the workload id), so
no order ever meets its own user and self-trade prevention never acts; every
user is funded far beyond what the workload can lock, so no order is rejected.
The outcome (trades, traded quantity, resting orders per side, best bid and
ask) must therefore equal a plain price-time book's; `--verify` replays the
workload through `bench_reference.PriceTimeBook` too and fails unless the two
agree trade for trade.

Measured: the wall time of the whole replay loop (commands/s) and, per command,
`time.perf_counter_ns` around `apply` (plus the journal write with `--journal`).
Commands are built before the clock starts; a cancel gets the engine's order id
(from the OrderAccepted of its add) just before its timer starts.

Exit status: 0; 1 if any command was rejected or `--verify` found a difference;
2 for bad arguments, an unreadable workload or a missing journal module.
"""

import argparse
import cProfile
import gc
import json
import math
import pstats
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from engine_svc.bench_reference import PriceTimeBook
from engine_svc.core.commands import (
    AddAsset,
    AddMarket,
    CancelOrder,
    Command,
    Deposit,
    PlaceOrder,
)
from engine_svc.core.engine import Engine
from engine_svc.core.events import Event, OrderAccepted, TradeExecuted
from engine_svc.core.markets import Asset, MarketSpec
from engine_svc.core.money import format_units
from engine_svc.core.types import (
    DEFAULT_STP,
    ClientOrderId,
    OrderId,
    OrderType,
    Rejected,
    Side,
    TimeInForce,
    UserId,
)
from engine_svc.journal import Journal, encode_record
from engine_svc.memory import tune_gc
from engine_svc.workload import (
    PRICE_DECIMALS,
    QTY_DECIMALS,
    Add,
    Cancel,
    Op,
    WorkloadError,
    read_workload,
)

BASE, QUOTE = "BASE", "QUOTE"
SYMBOL = f"{BASE}_{QUOTE}"
MAKER_FEE_BPS, TAKER_FEE_BPS = 1, 2
SPEC = MarketSpec(
    symbol=SYMBOL,
    base=BASE,
    quote=QUOTE,
    tick_size="0.1",
    step_size="1",
    min_quantity="1",
    min_notional="0",
    max_quantity="1000000000",
    max_price="100000000",
    maker_fee_bps=MAKER_FEE_BPS,
    taker_fee_bps=TAKER_FEE_BPS,
)
BUYERS = 500  # users 1..500 buy, 501..1000 sell
# Per user and asset: a million times a large order's notional, and still 1000
# users x FUNDING far below the engine's supply limit (2**62).
FUNDING = 10**15
START_TS = 1_700_000_000_000_000  # µs; the replay's engine clock advances 1 µs per command
DEFAULT_WARMUP = 20_000
PROFILE_TOP = 15
NO_CLIENT_ID = ClientOrderId(0)
NO_ORDER = OrderId(0)


class BatchedJournal:
    """Journals like the sequencer: one record and one fdatasync per batch of commands."""

    def __init__(self, directory: Path, batch: int) -> None:
        self.journal = Journal(directory)
        self.batch = batch
        self.entries: list[tuple[int, Command]] = []  # (ts, command) that changed state
        self.first_seq = 0
        self.seen = 0

    def append(self, command: Command, ts: int, events: list[Event]) -> None:
        if events:
            if not self.entries:
                self.first_seq = events[0].seq
            self.entries.append((ts, command))
        self.seen += 1
        if self.seen % self.batch == 0:
            self.flush()

    def flush(self) -> None:
        if self.entries:
            self.journal.append(self.first_seq, encode_record(self.first_seq, self.entries))
            self.entries = []

    def close(self) -> None:
        self.flush()
        self.journal.close()


class Outcome(NamedTuple):
    trades: int
    traded_qty: int
    resting_bids: int
    resting_asks: int
    best_bid: int | None
    best_ask: int | None


class Trade(NamedTuple):
    """A trade in workload ids, comparable between the engine and the reference book."""

    maker: int
    taker: int
    price: int
    qty: int


class Run(NamedTuple):
    outcome: Outcome
    rejections: int
    seconds: float  # wall time of the replay loop
    latencies_ns: list[int]  # per applied command, sorted
    trades: list[Trade] | None  # with record_trades


def buyer(order_id: int) -> UserId:
    return UserId(1 + order_id % BUYERS)


def seller(order_id: int) -> UserId:
    return UserId(BUYERS + 1 + order_id % BUYERS)


def setup_commands() -> list[Command]:
    """Lists the assets and the market and funds every user."""
    commands: list[Command] = [
        AddAsset(Asset(BASE, QTY_DECIMALS)),
        AddAsset(Asset(QUOTE, PRICE_DECIMALS)),
        AddMarket(SPEC),
    ]
    for user in range(1, 2 * BUYERS + 1):
        commands.append(Deposit(UserId(user), BASE, FUNDING))
        commands.append(Deposit(UserId(user), QUOTE, FUNDING))
    return commands


def new_engine(journal: BatchedJournal | None = None) -> Engine:
    engine = Engine()
    for i, command in enumerate(setup_commands()):
        ts = START_TS - 1_000_000 + i
        events = engine.apply(command, ts)
        if journal is not None:
            journal.append(command, ts, events)
    return engine


def build_commands(ops: Sequence[Op]) -> list[tuple[int, PlaceOrder | CancelOrder]]:
    """(workload id, command) per op. A CancelOrder has no order id yet (the
    engine assigns them); the replay fills it in."""
    users: dict[int, UserId] = {}
    commands: list[tuple[int, PlaceOrder | CancelOrder]] = []
    for op in ops:
        if isinstance(op, Add):
            user = users[op.id] = buyer(op.id) if op.buy else seller(op.id)
            side = Side.BUY if op.buy else Side.SELL
            commands.append(
                (
                    op.id,
                    PlaceOrder(
                        user, SYMBOL, side, OrderType.LIMIT, op.price, op.qty, 0,
                        TimeInForce.GTC, False, NO_CLIENT_ID, DEFAULT_STP,
                    ),
                )
            )  # fmt: skip
        else:
            commands.append((op.id, CancelOrder(users[op.id], SYMBOL, NO_ORDER, NO_CLIENT_ID)))
    return commands


def replay(
    engine: Engine,
    commands: Sequence[tuple[int, PlaceOrder | CancelOrder]],
    journal: BatchedJournal | None = None,
    record_trades: bool = False,
) -> Run:
    """Applies the commands in order, timing each one. The engine must be set up."""
    perf_ns = time.perf_counter_ns
    apply = engine.apply
    order_ids: dict[int, OrderId] = {}  # workload id -> engine order id
    latencies: list[int] = []
    trade_log: list[tuple[OrderId, OrderId, int, int]] | None = [] if record_trades else None
    rejections = 0
    trades_before, traded_before = engine.markets[SYMBOL].trades, engine.markets[SYMBOL].traded_qty
    ts = START_TS
    started = perf_ns()
    for workload_id, command in commands:
        ts += 1
        if type(command) is CancelOrder:
            order_id = order_ids.get(workload_id)
            if order_id is None:  # its add was rejected
                rejections += 1
                continue
            command = CancelOrder(command.user, command.market, order_id, command.client_id)
        t0 = perf_ns()
        try:
            events = apply(command, ts)
            if journal is not None:
                journal.append(command, ts, events)
        except Rejected:
            latencies.append(perf_ns() - t0)
            rejections += 1
            continue
        latencies.append(perf_ns() - t0)
        if trade_log is not None:
            for event in events:
                if type(event) is TradeExecuted:
                    trade_log.append((event.maker_order, event.taker_order, event.price, event.qty))
        if type(command) is PlaceOrder:
            accepted = events[0]
            assert type(accepted) is OrderAccepted
            order_ids[workload_id] = accepted.order_id
    seconds = (perf_ns() - started) / 1e9

    # The market's own trade counters (checked against the plain book by --verify).
    market, book = engine.markets[SYMBOL], engine.books[SYMBOL]
    outcome = Outcome(
        market.trades - trades_before,
        market.traded_qty - traded_before,
        sum(1 for _ in book.iter_side(Side.BUY)),
        sum(1 for _ in book.iter_side(Side.SELL)),
        book.best_price(Side.BUY),
        book.best_price(Side.SELL),
    )
    in_workload_ids = None
    if trade_log is not None:
        workload_id_of = {order_id: wid for wid, order_id in order_ids.items()}
        in_workload_ids = [
            Trade(workload_id_of[maker], workload_id_of[taker], price, qty)
            for maker, taker, price, qty in trade_log
        ]
    latencies.sort()
    return Run(outcome, rejections, seconds, latencies, in_workload_ids)


def reference_replay(ops: Sequence[Op]) -> tuple[Outcome, list[Trade]]:
    """The same workload through the plain price-time book."""
    book = PriceTimeBook()
    trades: list[Trade] = []
    for op in ops:
        if isinstance(op, Cancel):
            if op.id in book:  # a cancel of a filled order changes nothing (the engine rejects it)
                book.cancel(op.id)
        else:
            trades.extend(Trade(*fill) for fill in book.add(op.id, op.buy, op.price, op.qty))
    outcome = Outcome(
        len(trades),
        sum(t.qty for t in trades),
        book.count(True),
        book.count(False),
        book.best_bid(),
        book.best_ask(),
    )
    return outcome, trades


def verify(run: Run, ops: Sequence[Op]) -> list[str]:
    """Differences between the engine's run and the reference book's replay."""
    expected, expected_trades = reference_replay(ops)
    problems = [
        f"{name}: engine {got}, reference book {want}"
        for name, got, want in zip(Outcome._fields, run.outcome, expected, strict=True)
        if got != want
    ]
    engine_trades = run.trades or []
    for i, (got, want) in enumerate(zip(engine_trades, expected_trades, strict=False)):
        if got != want:
            problems.append(f"trade #{i + 1}: engine {got}, reference book {want}")
            break
    return problems


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of sorted values (0 if there are none)."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(len(sorted_values) * q / 100))
    return sorted_values[rank - 1]


class BenchError(Exception):
    """The bench cannot run as asked (exit status 2)."""


def _price(units: int | None) -> str | None:
    return None if units is None else format_units(units, PRICE_DECIMALS)


def report(run: Run, commands: int) -> dict[str, Any]:
    o = run.outcome
    return {
        "commands_per_second": round(commands / run.seconds) if run.seconds else 0,
        "p50_us": round(percentile(run.latencies_ns, 50) / 1000, 2),
        "p99_us": round(percentile(run.latencies_ns, 99) / 1000, 2),
        "trades": o.trades,
        "traded_qty": format_units(o.traded_qty, QTY_DECIMALS),
        "resting_bids": o.resting_bids,
        "resting_asks": o.resting_asks,
        "best_bid": _price(o.best_bid),
        "best_ask": _price(o.best_ask),
        "commands": commands,
        "rejections": run.rejections,
        "seconds": round(run.seconds, 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine_svc.bench", description="Replay a workload through the engine core."
    )
    parser.add_argument("--workload", type=Path, required=True, help="a JSONL workload file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--verify", action="store_true", help="check the outcome against a plain price-time book"
    )
    parser.add_argument(
        "--journal", type=Path, metavar="DIR", help="journal to DIR, one fdatasync per batch"
    )
    parser.add_argument(
        "--journal-batch", type=int, default=256, help="commands per journal record (group commit)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP,
        help=f"commands replayed on a scratch engine before timing (default {DEFAULT_WARMUP:,})",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="run the timed replay under cProfile, save the stats to FILE and print the top "
        f"{PROFILE_TOP} functions by own time to stderr (the timings then include its overhead)",
    )
    args = parser.parse_args(argv)

    try:
        journal = (
            BatchedJournal(args.journal, args.journal_batch) if args.journal is not None else None
        )
        ops = read_workload(args.workload)
    except (BenchError, OSError, WorkloadError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    commands = build_commands(ops)

    # Warm the process up (imports, the interpreter's specialized code, the
    # allocator) on a scratch engine that is then thrown away.
    if args.warmup > 0:
        replay(new_engine(), commands[: args.warmup])
    engine = new_engine()
    # GC stays on during the replay, tuned as the service tunes it after recovery.
    # The prebuilt commands (hundreds of thousands of tuples) are the harness's, not
    # the engine's: a service never holds them. Freezing moves everything alive now
    # out of the collector's sight, so the collections the replay triggers only walk
    # what the engine itself allocates.
    tune_gc()
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    run = replay(engine, commands, journal, record_trades=args.verify)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    gc.unfreeze()
    if journal is not None:
        journal.close()

    result = report(run, len(commands))
    problems = verify(run, ops) if args.verify else []
    if args.verify:
        result["verified"] = not problems
    if args.json:
        print(json.dumps(result))
    else:
        _print_human(args.workload, result, journal is not None)
    if args.profile:
        sys.stdout.flush()
        stats = pstats.Stats(str(args.profile), stream=sys.stderr)
        stats.sort_stats(pstats.SortKey.TIME).print_stats(PROFILE_TOP)
    for problem in problems:
        print(f"bench: VERIFY FAILED: {problem}", file=sys.stderr)
    if run.rejections:
        print(f"bench: {run.rejections} commands were rejected; expected none", file=sys.stderr)
    return 1 if problems or run.rejections else 0


def _print_human(workload: Path, r: dict[str, Any], journaled: bool) -> None:
    print(
        f"workload  {workload}: {r['commands']:,} commands, journal {'on' if journaled else 'off'}"
    )
    print(
        f"engine    {r['commands_per_second']:,} commands/s ({r['seconds']} s); "
        f"latency p50 {r['p50_us']} µs, p99 {r['p99_us']} µs; rejections {r['rejections']}"
    )
    print(
        f"outcome   {r['trades']:,} trades, traded qty {r['traded_qty']}; resting "
        f"{r['resting_bids']:,} bids / {r['resting_asks']:,} asks; "
        f"best bid {r['best_bid']}, best ask {r['best_ask']}"
    )
    if "verified" in r:
        verdict = "agrees with" if r["verified"] else "DIFFERS from"
        print(f"verify    the engine {verdict} the plain price-time book, trade for trade")


if __name__ == "__main__":
    sys.exit(main())
