"""Benchmark workloads: order entry for one market, as JSON lines.

    {"op":"add","id":17,"side":"buy","price":"999.3","qty":"12"}   a limit GTC order
    {"op":"cancel","id":17}                                        cancels a resting order
    {"op":"stop","id":18,"side":"sell","trigger":"998.1","qty":"4"} a stop-limit order

`id` is the workload's own order id: unique among adds and stops, ascending, and a
cancel names an order that is resting at that point (never one that was filled, never
a stop that has not fired). A stop waits, unbooked, until the last trade price reaches
its trigger, then becomes a limit GTC order at that price (bench.reference_stops).
Prices have PRICE_DECIMALS decimals (tick 0.1), quantities QTY_DECIMALS (step 1).
An add whose price crosses the spread is a marketable order: it fills, and
whatever is left rests.

`python -m bench.workload --commands 200000 --seed 1 --out FILE` writes a
seeded workload; the same arguments always give the same file. It keeps a
model of the book (`PriceTimeBook`) so that it knows the spread, the levels and
which orders are still resting. Per command:
- the mid price does a slow random walk (one tick, now and then);
- MARKETABLE_SHARE of commands are marketable orders: they cross the spread by
  one to three levels (and up to two ticks beyond) with a size that eats one to
  three levels, sometimes with a remainder that rests;
- the rest are resting adds (joining the best level of their side, or buys
  below the mid and sells above it at an exponential distance) and cancels of
  a random resting order, in about a 2:1 ratio; the ratio is steered by how far
  the book's depth (resting orders, both sides) is from the target `--depth`
  (MIN_DEPTH..MAX_DEPTH). Once the book has filled up, that keeps the depth
  within about 10% of a target of 1,000 or more (a third for a target of 100).
- with `--stops N`, N stop-limit orders are placed in a row once the book has first
  filled up, and afterwards STOP_REFILL of the commands place one while fewer than N are
  pending: buy or sell, its trigger above or below the last price at an exponential
  distance (mean STOP_DISTANCE ticks), so the mid's walk and the marketable orders keep
  firing them.
"""

import argparse
import itertools
import os
import random
import statistics
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import orjson

from bench.reference_book import PriceTimeBook
from bench.reference_stops import Stop, StopBook
from tradekit.money import AmountError, format_units, parse_units

PRICE_DECIMALS = 1  # the benchmark market's quote asset; tick 0.1 = 1 unit
QTY_DECIMALS = 0  # its base asset; step 1 = 1 unit

MIN_DEPTH, MAX_DEPTH = 100, 10_000
DEFAULT_DEPTH = 1_000
START_MID = 10_000  # ticks: 1000.0
MID_STEP_CHANCE = 0.02  # per command, the mid moves one tick up or down
MARKETABLE_SHARE = 0.10
CANCEL_SHARE_OF_REST = 1 / 3  # 30% cancels to 60% resting adds at the target depth
STEERING = 4  # the cancel share scales with (depth / target) ** STEERING
# Where resting orders go: JOIN_TOUCH of them join the best level of their side,
# the others land at an exponential distance from the mid with a mean of
# depth / DEPTH_PER_TICK ticks. Tuned so that a marketable order eating 1-3 levels
# takes about three orders, which is what keeps the mix near 60/30/10 at the target.
JOIN_TOUCH = 0.25
DEPTH_PER_TICK = 6
MEAN_RESTING_QTY = 10
STOP_DISTANCE = 100  # ticks from the last price, on average
STOP_REFILL = 0.1
MAX_STOPS = 20_000


class Add(NamedTuple):
    id: int
    buy: bool
    price: int  # in units of PRICE_DECIMALS (ticks)
    qty: int  # in units of QTY_DECIMALS (steps)


class Cancel(NamedTuple):
    id: int


Op = Add | Cancel | Stop


class WorkloadError(ValueError):
    pass


def format_op(op: Op) -> bytes:
    """One JSON line (with its newline), keys in the documented order."""
    if isinstance(op, Cancel):
        return orjson.dumps({"op": "cancel", "id": op.id}) + b"\n"
    if isinstance(op, Stop):
        stop = {
            "op": "stop",
            "id": op.id,
            "side": "buy" if op.buy else "sell",
            "trigger": format_units(op.trigger, PRICE_DECIMALS),
            "qty": format_units(op.qty, QTY_DECIMALS),
        }
        return orjson.dumps(stop) + b"\n"
    line = {
        "op": "add",
        "id": op.id,
        "side": "buy" if op.buy else "sell",
        "price": format_units(op.price, PRICE_DECIMALS),
        "qty": format_units(op.qty, QTY_DECIMALS),
    }
    return orjson.dumps(line) + b"\n"


def parse_op(line: bytes) -> Op:
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise WorkloadError(f"not JSON: {exc}") from None
    if not isinstance(item, dict):
        raise WorkloadError("not a JSON object")
    order_id = item.get("id")
    if not isinstance(order_id, int) or isinstance(order_id, bool) or order_id <= 0:
        raise WorkloadError(f"id must be a positive integer, got {order_id!r}")
    op = item.get("op")
    if op == "cancel":
        return Cancel(order_id)
    if op not in ("add", "stop"):
        raise WorkloadError(f"op must be 'add', 'cancel' or 'stop', got {op!r}")
    side, price, qty = (
        item.get("side"),
        item.get("price" if op == "add" else "trigger"),
        item.get("qty"),
    )
    if side not in ("buy", "sell"):
        raise WorkloadError(f"side must be 'buy' or 'sell', got {side!r}")
    if not isinstance(price, str) or not isinstance(qty, str):
        raise WorkloadError("price (a stop's trigger) and qty must be decimal strings")
    try:
        kind = Add if op == "add" else Stop
        return kind(
            order_id,
            side == "buy",
            parse_units(price, PRICE_DECIMALS),
            parse_units(qty, QTY_DECIMALS),
        )
    except AmountError as exc:
        raise WorkloadError(str(exc)) from None


def read_workload(path: Path) -> list[Op]:
    """Every command of the file, checked: ids of adds and stops are new, cancels name a
    known add or stop."""
    ops: list[Op] = []
    added: set[int] = set()
    stops: set[int] = set()
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                op = parse_op(line)
                if isinstance(op, Add | Stop):
                    if op.id in added or op.id in stops:
                        raise WorkloadError(f"id {op.id} is added twice")
                    (added if isinstance(op, Add) else stops).add(op.id)
                elif op.id not in added and op.id not in stops:
                    raise WorkloadError(f"cancel of id {op.id}, which was never added")
            except WorkloadError as exc:
                raise WorkloadError(f"{path}:{number}: {exc}") from None
            ops.append(op)
    return ops


@dataclass
class GeneratorStats:
    resting_adds: int = 0
    marketable: int = 0
    cancels: int = 0
    trades: int = 0
    levels_eaten: int = 0  # summed over marketable orders
    stops: int = 0
    stops_fired: int = 0
    stop_samples: list[int] = field(default_factory=list)  # pending, per 1,000 commands
    target_depth: int = 0
    target_stops: int = 0
    depth_samples: list[int] = field(default_factory=list)  # one per 1,000 commands

    def summary(self) -> str:
        total = self.resting_adds + self.marketable + self.cancels
        share = {
            name: 100 * n / total if total else 0.0
            for name, n in (
                ("resting adds", self.resting_adds),
                ("cancels", self.cancels),
                ("marketable", self.marketable),
            )
        }
        filled = [i for i, d in enumerate(self.depth_samples) if d >= 0.9 * self.target_depth]
        settled = self.depth_samples[filled[0] :] if filled else self.depth_samples or [0]
        per_marketable = self.levels_eaten / self.marketable if self.marketable else 0.0
        return (
            f"{total:,} commands: "
            + ", ".join(f"{pct:.1f}% {name}" for name, pct in share.items())
            + f"; {self.trades:,} trades, {per_marketable:.2f} levels per marketable order; "
            f"depth after fill-up min {min(settled):,} median {int(statistics.median(settled)):,} "
            f"max {max(settled):,}" + (self._stops_summary() if self.stops else "")
        )

    def _stops_summary(self) -> str:
        full = [i for i, n in enumerate(self.stop_samples) if n >= 0.99 * self.target_stops]
        after = self.stop_samples[full[0] :] if full else self.stop_samples or [0]
        return (
            f"; {self.stops:,} stops placed, {self.stops_fired:,} fired; pending after "
            f"fill-up min {min(after):,} median {int(statistics.median(after)):,}"
        )


class _Generator:
    def __init__(self, seed: int, depth: int, stops: int = 0) -> None:
        self.rng = random.Random(seed)
        self.depth = depth
        self.target_stops = stops
        self.stops = StopBook()
        self.filled_up = False
        self.mean_distance = max(2, depth // DEPTH_PER_TICK)
        self.book = PriceTimeBook()
        self.mid = START_MID
        self.next_id = 1
        # Resting ids in a list (with each one's index) for O(1) random picks and removal.
        self.live: list[int] = []
        self.index: dict[int, int] = {}
        self.stats = GeneratorStats(target_depth=depth, target_stops=stops)

    def __iter__(self) -> Iterator[Op]:
        rng = self.rng
        while True:
            if len(self.stops) < self.target_stops and self._stop_now():
                yield self._stop()
                continue
            if rng.random() < MID_STEP_CHANCE:
                self.mid = max(2 * self.mean_distance, self.mid + rng.choice((-1, 1)))
            if rng.random() < MARKETABLE_SHARE:
                op = self._marketable()
                if op is not None:
                    yield op
                    continue
            steer = (len(self.live) / self.depth) ** STEERING
            if self.live and rng.random() < min(0.9, CANCEL_SHARE_OF_REST * steer):
                yield self._cancel()
            else:
                yield self._resting()

    def _add(self, buy: bool, price: int, qty: int) -> Add:
        op = Add(self.next_id, buy, price, qty)
        self.next_id += 1
        fills = self.book.add(op.id, buy, price, qty)
        fired = len(self.stops.fired)
        fills += self.stops.after(self.book, fills)
        # A maker may fill more than once (the order's fill, then a fired stop's), and
        # the order itself or a fired stop may rest and then fill.
        for fill in fills:
            self.stats.trades += 1
            if fill.maker not in self.book and fill.maker in self.index:
                self._forget(fill.maker)
        for order_id in (op.id, *self.stops.fired[fired:]):
            if order_id in self.book:
                self.index[order_id] = len(self.live)
                self.live.append(order_id)
        self.stats.stops_fired += len(self.stops.fired) - fired
        del self.stops.fired[fired:]
        return op

    def _stop_now(self) -> bool:
        """The first N stops in a row once the book has filled up, then a few at a time."""
        if self.stops.last is None:
            return False
        if not self.filled_up:
            self.filled_up = len(self.live) >= 0.9 * self.depth
            return self.filled_up
        if self.stats.stops < self.target_stops:
            return True
        return self.rng.random() < STOP_REFILL

    def _stop(self) -> Stop:
        rng = self.rng
        last = self.stops.last
        assert last is not None
        distance = 1 + int(rng.expovariate(1 / STOP_DISTANCE))
        trigger = last + distance if rng.random() < 0.5 else max(1, last - distance)
        if trigger == last:  # the far tail below a low price: above instead
            trigger = last + distance
        stop = Stop(self.next_id, rng.random() < 0.5, trigger, self._resting_qty())
        self.next_id += 1
        self.stops.place(stop)
        self.stats.stops += 1
        return stop

    def _forget(self, order_id: int) -> None:
        i = self.index.pop(order_id)
        last = self.live.pop()
        if last != order_id:
            self.live[i] = last
            self.index[last] = i

    def _resting(self) -> Add:
        rng = self.rng
        buy = rng.random() < 0.5
        self.stats.resting_adds += 1
        touch = self.book.levels(buy, 1)
        if touch and rng.random() < JOIN_TOUCH:
            return self._add(buy, touch[0][0], self._resting_qty())
        distance = 1 + int(rng.expovariate(1 / self.mean_distance))
        while buy and distance >= self.mid:  # the far tail of a deep book: draw again
            distance = 1 + int(rng.expovariate(1 / self.mean_distance))
        if buy:
            price = self.mid - distance
            ask = self.book.best_ask()
            if ask is not None:
                price = min(price, ask - 1)
        else:
            price = self.mid + distance
            bid = self.book.best_bid()
            if bid is not None:
                price = max(price, bid + 1)
        return self._add(buy, max(1, price), self._resting_qty())

    def _resting_qty(self) -> int:
        return 1 + int(self.rng.expovariate(1 / (MEAN_RESTING_QTY - 1)))

    def _marketable(self) -> Add | None:
        rng = self.rng
        buy = rng.random() < 0.5
        levels = self.book.levels(not buy, rng.randint(1, 3))
        if not levels:
            return None  # nothing to take on that side yet
        self.stats.marketable += 1
        self.stats.levels_eaten += len(levels)
        *whole, (last_price, last_total) = levels
        qty = sum(total for _, total in whole) + rng.randint(1, last_total)
        if rng.random() < 0.2:
            qty += self._resting_qty()  # more than the levels hold: eats on or rests
        beyond = rng.randint(0, 2)
        price = last_price + beyond if buy else max(1, last_price - beyond)
        return self._add(buy, price, qty)

    def _cancel(self) -> Cancel:
        order_id = self.live[self.rng.randrange(len(self.live))]
        self.book.cancel(order_id)
        self._forget(order_id)
        self.stats.cancels += 1
        return Cancel(order_id)


def generate(commands: int, seed: int, depth: int = DEFAULT_DEPTH, stops: int = 0) -> Iterator[Op]:
    ops, _ = generate_with_stats(commands, seed, depth, stops)
    return ops


def generate_with_stats(
    commands: int, seed: int, depth: int = DEFAULT_DEPTH, stops: int = 0
) -> tuple[Iterator[Op], GeneratorStats]:
    """The workload's commands, lazily, and the stats they fill in as they are drawn."""
    if not MIN_DEPTH <= depth <= MAX_DEPTH:
        raise ValueError(f"depth must be {MIN_DEPTH}..{MAX_DEPTH}, got {depth}")
    if not 0 <= stops <= MAX_STOPS:
        raise ValueError(f"stops must be 0..{MAX_STOPS}, got {stops}")
    gen = _Generator(seed, depth, stops)

    def ops() -> Iterator[Op]:
        for i, op in enumerate(itertools.islice(gen, commands), 1):
            if i % 1000 == 0:
                gen.stats.depth_samples.append(len(gen.live))
                gen.stats.stop_samples.append(len(gen.stops))
            yield op

    return ops(), gen.stats


def write_workload(
    path: Path, commands: int, seed: int, depth: int = DEFAULT_DEPTH, stops: int = 0
) -> str:
    """Writes the workload (atomically: a partial file never has the final name); returns stats."""
    ops, stats = generate_with_stats(commands, seed, depth, stops)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.writelines(format_op(op) for op in ops)
    os.replace(tmp, path)
    return stats.summary()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.workload", description="Write a seeded benchmark workload."
    )
    parser.add_argument("--commands", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--depth",
        type=int,
        default=DEFAULT_DEPTH,
        help=f"target resting orders, {MIN_DEPTH}..{MAX_DEPTH} (default {DEFAULT_DEPTH})",
    )
    parser.add_argument(
        "--stops",
        type=int,
        default=0,
        help=f"stop-market orders kept pending once the market has traded, 0..{MAX_STOPS}",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.commands <= 0:
        parser.error("--commands must be positive")
    if not MIN_DEPTH <= args.depth <= MAX_DEPTH:
        parser.error(f"--depth must be {MIN_DEPTH}..{MAX_DEPTH}")
    if not 0 <= args.stops <= MAX_STOPS:
        parser.error(f"--stops must be 0..{MAX_STOPS}")
    summary = write_workload(args.out, args.commands, args.seed, args.depth, args.stops)
    print(f"{args.out}: {summary}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
