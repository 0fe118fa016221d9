"""The engine benchmark: replays a workload through the full engine core.

    python -m engine_svc.bench --workload FILE [--json] [--verify] [--journal DIR]
                               [--warmup N] [--profile FILE]

Every line of the workload (see `bench.workload`) becomes a PlaceOrder
(limit GTC), a CancelOrder or a PlaceConditional (a stop: a limit GTC order at its
trigger price, waiting for it) for one market, BASE_QUOTE, tick 0.1, step 1, maker
fee MAKER_FEE_BPS and taker fee TAKER_FEE_BPS, and goes through `Engine.apply`:
validation, risk checks and locking, matching, settlement with fees, events.
Buyers are users 1..500 and sellers 501..1000 (picked from the workload id), so
no order ever meets its own user and self-trade prevention never acts; every
user is funded far beyond what the workload can lock, so no order is rejected.
The outcome (trades, traded quantity, resting orders per side, best bid and
ask, stops still pending) must therefore equal a plain price-time book's; `--verify`
replays the workload through `bench.reference_book.PriceTimeBook` (with
`bench.reference_stops.StopBook` for the stops) too and fails unless the two agree
trade for trade.

Commands are built before the clock starts. The engine numbers accepted orders and
stops 1, 2, 3, ... in arrival order (a fired stop trades under its own number), so a
cancel names the order id its add will get; a rejected add would shift them, and any
rejection fails the run.

Without `--journal`, the commands are applied one by one; measured: the wall
time of the loop (commands/s) and, per command, `time.perf_counter_ns` around
`apply`. With `--journal DIR` (an empty or new directory), they go through the
service's own path: the `Sequencer` with a `Journal` in DIR, pipelined group
commit and all, submitted like a client streaming `--submit-batch` commands per
message with at most `--in-flight` commands unanswered; measured: the wall
time from the first submission to the last acknowledgment, and per command the
time from its submission to its acknowledgment (its record durable).

Exit status: 0; 1 if any command was rejected or `--verify` found a difference;
2 for bad arguments, an unreadable workload or an unusable journal directory.
"""

import argparse
import asyncio
import cProfile
import gc
import json
import math
import pstats
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Any, NamedTuple

from bench.reference_book import PriceTimeBook
from bench.reference_stops import Stop, StopBook
from bench.workload import (
    PRICE_DECIMALS,
    QTY_DECIMALS,
    Add,
    Cancel,
    Op,
    WorkloadError,
    read_workload,
)
from engine_svc.core.commands import (
    AddAsset,
    AddMarket,
    Bracket,
    CancelOrder,
    Command,
    Deposit,
    PlaceConditional,
    PlaceOrder,
)
from engine_svc.core.engine import Engine
from engine_svc.core.events import Event, TradeExecuted
from engine_svc.core.types import (
    DEFAULT_STP,
    ClientOrderId,
    Code,
    OrderId,
    OrderType,
    Rejected,
    Side,
    TimeInForce,
    UserId,
)
from engine_svc.journal import Journal
from engine_svc.sequencer import Outcome as CommandOutcome
from engine_svc.sequencer import Sequencer
from servicekit.memory import tune_gc
from tradekit.markets import Asset, MarketSpec
from tradekit.money import format_units

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
SUBMIT_BATCH = 256  # commands per submission with --journal, as a client's CommandBatch
IN_FLIGHT = 8192  # commands submitted and not yet acknowledged, at most: two full batches
PROFILE_TOP = 15
NO_CLIENT_ID = ClientOrderId(0)
NO_BRACKET = Bracket()
FIRST_ORDER_ID = 1  # what the engine numbers its first order (setup places none)


class Script(NamedTuple):
    """The workload as engine commands: cancels name the order id their add will get."""

    commands: list[Command]
    adds: list[int]  # the workload id of each add or stop, in order: the k-th gets
    # FIRST_ORDER_ID + k


class Outcome(NamedTuple):
    trades: int
    traded_qty: int
    resting_bids: int
    resting_asks: int
    best_bid: int | None
    best_ask: int | None
    pending_stops: int


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
    cpu_seconds: float  # the process's CPU time over it: on a shared machine, the steadier
    latencies_ns: list[int]  # per command, sorted
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


def new_engine() -> Engine:
    engine = Engine()
    for i, command in enumerate(setup_commands()):
        engine.apply(command, START_TS - 1_000_000 + i)
    return engine


def build_commands(ops: Sequence[Op]) -> Script:
    users: dict[int, UserId] = {}
    order_ids: dict[int, OrderId] = {}  # workload id -> the engine's order id
    commands: list[Command] = []
    adds: list[int] = []
    for op in ops:
        if isinstance(op, Stop):
            user = users[op.id] = buyer(op.id) if op.buy else seller(op.id)
            order_ids[op.id] = OrderId(FIRST_ORDER_ID + len(adds))
            adds.append(op.id)
            side = Side.BUY if op.buy else Side.SELL
            order = PlaceOrder(
                user, SYMBOL, side, OrderType.LIMIT, op.trigger, op.qty, 0,
                TimeInForce.GTC, False, NO_CLIENT_ID, DEFAULT_STP,
            )  # fmt: skip
            commands.append(PlaceConditional(order, op.trigger, NO_BRACKET))
        elif isinstance(op, Add):
            user = users[op.id] = buyer(op.id) if op.buy else seller(op.id)
            side = Side.BUY if op.buy else Side.SELL
            order_ids[op.id] = OrderId(FIRST_ORDER_ID + len(adds))
            adds.append(op.id)
            commands.append(
                PlaceOrder(
                    user, SYMBOL, side, OrderType.LIMIT, op.price, op.qty, 0, TimeInForce.GTC,
                    False, NO_CLIENT_ID, DEFAULT_STP,
                )
            )  # fmt: skip
        else:
            commands.append(CancelOrder(users[op.id], SYMBOL, order_ids[op.id], NO_CLIENT_ID))
    return Script(commands, adds)


def replay(engine: Engine, script: Script, record_trades: bool = False) -> Run:
    """Applies the commands in order, timing each one. The engine must be set up."""
    perf_ns = time.perf_counter_ns
    apply = engine.apply
    latencies: list[int] = []
    trade_log: list[TradeExecuted] | None = [] if record_trades else None
    rejections = 0
    market = engine.markets[SYMBOL]
    trades_before, traded_before = market.trades, market.traded_qty
    ts = START_TS
    cpu = time.process_time()
    started = perf_ns()
    for command in script.commands:
        ts += 1
        t0 = perf_ns()
        try:
            events = apply(command, ts)
        except Rejected:
            latencies.append(perf_ns() - t0)
            rejections += 1
            continue
        latencies.append(perf_ns() - t0)
        if trade_log is not None:
            trade_log.extend(e for e in events if type(e) is TradeExecuted)
    seconds = (perf_ns() - started) / 1e9
    cpu = time.process_time() - cpu
    latencies.sort()
    trades = None if trade_log is None else _in_workload_ids(trade_log, script)
    outcome = _outcome(engine, trades_before, traded_before)
    return Run(outcome, rejections, seconds, cpu, latencies, trades)


async def replay_journaled(
    journal_dir: Path,
    script: Script,
    *,
    submit_batch: int = SUBMIT_BATCH,
    in_flight: int = IN_FLIGHT,
    record_trades: bool = False,
    timed: AbstractContextManager[None] | None = None,
) -> tuple[Engine, Run]:
    """Sets a new engine up and replays the commands through the service's sequencer and
    journal, as a client streaming batches would. `timed`, a context manager, wraps the
    timed part (for the profiler)."""
    engine = Engine()
    journal = Journal(journal_dir)
    sequencer = Sequencer(engine, journal, publish=_ignore)
    sequencer.start()
    try:
        setup = await sequencer.submit_many(setup_commands())
        if any(o.code != Code.OK for o in setup):
            raise BenchError("the market and funds could not be set up")
        with nullcontext() if timed is None else timed:
            run = await _stream(sequencer, script, submit_batch, in_flight, record_trades)
    finally:
        await sequencer.close()
        journal.close()
    return engine, run


async def _stream(
    sequencer: Sequencer, script: Script, submit_batch: int, in_flight: int, record: bool
) -> Run:
    perf_ns = time.perf_counter_ns
    engine = sequencer.engine
    market = engine.markets[SYMBOL]
    trades_before, traded_before = market.trades, market.traded_qty
    latencies: list[int] = []
    executed: list[TradeExecuted] = []
    rejections = 0
    unanswered: deque[asyncio.Future[list[CommandOutcome]]] = deque()
    window = max(1, in_flight // submit_batch)  # submissions

    def acknowledged(sent_ns: int, answer: asyncio.Future[list[CommandOutcome]]) -> None:
        # Taken in as they come, as a client would: nothing of the answers is kept.
        nonlocal rejections
        outcomes = answer.result()
        latencies.extend(repeat(perf_ns() - sent_ns, len(outcomes)))
        for outcome in outcomes:
            if outcome.code:  # Code.OK is 0
                rejections += 1
            elif record:
                executed.extend(e for e in outcome.events if type(e) is TradeExecuted)

    commands = script.commands
    cpu = time.process_time()
    started = perf_ns()
    for first in range(0, len(commands), submit_batch):
        if len(unanswered) >= window:
            await unanswered.popleft()
        answer = sequencer.submit_many(commands[first : first + submit_batch])
        answer.add_done_callback(partial(acknowledged, perf_ns()))
        unanswered.append(answer)
    for answer in unanswered:
        await answer
    await asyncio.sleep(0)  # the last acknowledgments' callbacks
    seconds = (perf_ns() - started) / 1e9
    cpu = time.process_time() - cpu
    latencies.sort()
    trades = _in_workload_ids(executed, script) if record else None
    outcome = _outcome(engine, trades_before, traded_before)
    return Run(outcome, rejections, seconds, cpu, latencies, trades)


def _ignore(events: list[Event]) -> None:
    """No subscribers in the benchmark."""


def _in_workload_ids(executed: list[TradeExecuted], script: Script) -> list[Trade]:
    adds = script.adds
    return [
        Trade(
            adds[e.maker_order - FIRST_ORDER_ID],
            adds[e.taker_order - FIRST_ORDER_ID],
            e.price,
            e.qty,
        )
        for e in executed
    ]


def _outcome(engine: Engine, trades_before: int, traded_before: int) -> Outcome:
    """The market's own trade counters (checked against the plain book by --verify)."""
    market, book = engine.markets[SYMBOL], engine.books[SYMBOL]
    return Outcome(
        market.trades - trades_before,
        market.traded_qty - traded_before,
        sum(1 for _ in book.iter_side(Side.BUY)),
        sum(1 for _ in book.iter_side(Side.SELL)),
        book.best_price(Side.BUY),
        book.best_price(Side.SELL),
        len(engine.trigger_books[SYMBOL]),
    )


def reference_replay(ops: Sequence[Op]) -> tuple[Outcome, list[Trade]]:
    """The same workload through the plain price-time book and stops."""
    book = PriceTimeBook()
    stops = StopBook()
    trades: list[Trade] = []
    for op in ops:
        if isinstance(op, Cancel):
            if op.id in book:  # a cancel of a filled order changes nothing (the engine rejects it)
                book.cancel(op.id)
        elif isinstance(op, Stop):
            stops.place(op)
        else:
            fills = book.add(op.id, op.buy, op.price, op.qty)
            trades.extend(Trade(*fill) for fill in fills + stops.after(book, fills))
    outcome = Outcome(
        len(trades),
        sum(t.qty for t in trades),
        book.count(True),
        book.count(False),
        book.best_bid(),
        book.best_ask(),
        len(stops),
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
        "commands_per_cpu_second": round(commands / run.cpu_seconds) if run.cpu_seconds else 0,
        "p50_us": round(percentile(run.latencies_ns, 50) / 1000, 2),
        "p99_us": round(percentile(run.latencies_ns, 99) / 1000, 2),
        "trades": o.trades,
        "traded_qty": format_units(o.traded_qty, QTY_DECIMALS),
        "resting_bids": o.resting_bids,
        "resting_asks": o.resting_asks,
        "best_bid": _price(o.best_bid),
        "best_ask": _price(o.best_ask),
        "pending_stops": o.pending_stops,
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
        "--journal",
        type=Path,
        metavar="DIR",
        help="go through the service's sequencer and journal, in DIR (empty or new)",
    )
    parser.add_argument(
        "--submit-batch",
        type=int,
        default=SUBMIT_BATCH,
        help=f"with --journal: commands per submission (default {SUBMIT_BATCH})",
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=IN_FLIGHT,
        help=f"with --journal: commands unacknowledged at most (default {IN_FLIGHT:,})",
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
        if args.journal is not None and args.journal.exists() and any(args.journal.iterdir()):
            raise BenchError(f"{args.journal}: the journal directory must be empty or new")
        if args.submit_batch < 1 or args.in_flight < 1:
            raise BenchError("--submit-batch and --in-flight must be at least 1")
        ops = read_workload(args.workload)
    except (BenchError, OSError, WorkloadError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    script = build_commands(ops)

    # Warm the process up (imports, the interpreter's specialized code, the
    # allocator) on a scratch engine that is then thrown away.
    if args.warmup > 0:
        replay(new_engine(), Script(script.commands[: args.warmup], script.adds))
    if args.journal is None:
        engine = new_engine()
        with measured(args.profile):
            run = replay(engine, script, record_trades=args.verify)
    else:
        try:
            _, run = asyncio.run(
                replay_journaled(
                    args.journal,
                    script,
                    submit_batch=args.submit_batch,
                    in_flight=args.in_flight,
                    record_trades=args.verify,
                    timed=measured(args.profile),
                )
            )
        except (BenchError, OSError) as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 2

    result = report(run, len(script.commands))
    result["latency"] = "apply" if args.journal is None else "acknowledged"
    problems = verify(run, ops) if args.verify else []
    if args.verify:
        result["verified"] = not problems
    if args.json:
        print(json.dumps(result))
    else:
        _print_human(args.workload, result, args.journal is not None)
    if args.profile:
        sys.stdout.flush()
        stats = pstats.Stats(str(args.profile), stream=sys.stderr)
        stats.sort_stats(pstats.SortKey.TIME).print_stats(PROFILE_TOP)
    for problem in problems:
        print(f"bench: VERIFY FAILED: {problem}", file=sys.stderr)
    if run.rejections:
        print(f"bench: {run.rejections} commands were rejected; expected none", file=sys.stderr)
    return 1 if problems or run.rejections else 0


@contextmanager
def measured(profile: Path | None) -> Iterator[None]:
    """The timed part: GC tuned as the service tunes it after recovery, under cProfile if
    asked. The prebuilt commands (hundreds of thousands of tuples) are the harness's, not
    the engine's: a service never holds them. Freezing moves everything alive now out of
    the collector's sight, so the collections the replay triggers only walk what the
    engine itself allocates."""
    tune_gc()
    profiler = None if profile is None else cProfile.Profile()
    if profiler is not None:
        profiler.enable()
    try:
        yield
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))
        gc.unfreeze()


def _print_human(workload: Path, r: dict[str, Any], journaled: bool) -> None:
    print(
        f"workload  {workload}: {r['commands']:,} commands, journal {'on' if journaled else 'off'}"
    )
    print(
        f"engine    {r['commands_per_second']:,} commands/s ({r['seconds']} s; "
        f"{r['commands_per_cpu_second']:,} per CPU second); "
        f"latency to {'acknowledgment' if journaled else 'apply'} p50 {r['p50_us']} µs, "
        f"p99 {r['p99_us']} µs; rejections {r['rejections']}"
    )
    print(
        f"outcome   {r['trades']:,} trades, traded qty {r['traded_qty']}; resting "
        f"{r['resting_bids']:,} bids / {r['resting_asks']:,} asks; "
        f"best bid {r['best_bid']}, best ask {r['best_ask']}"
        + (f"; stops pending {r['pending_stops']:,}" if r["pending_stops"] else "")
    )
    if "verified" in r:
        verdict = "agrees with" if r["verified"] else "DIFFERS from"
        print(f"verify    the engine {verdict} the plain price-time book, trade for trade")


if __name__ == "__main__":
    sys.exit(main())
