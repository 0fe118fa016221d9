"""What one class of ordinary orders costs in the core, counted apart from the rest.

    PYTHONHASHSEED=0 valgrind --tool=callgrind --toggle-collect=CPyPy_entry___place \\
        python -m engine_svc.bench_taking --workload FILE [--orders taking|resting]

Callgrind inside `Engine.apply` sums every command of a replay, and per function it sums
every call: the average ordinary order it gives mixes orders that take liquidity with
orders that only rest, while a fired stop usually takes. To compare a firing with the
order it becomes, this replays the workload twice. The first pass, on a scratch engine,
notes which orders took liquidity (the order itself traded as taker). The second, on a
fresh engine, sends the orders of the class asked for through `entry.place` called from
here, then the cascade as `Engine.apply` runs it, and every other command through
`apply`. The core itself only ever calls `place` inside compiled code, never through its
Python wrapper, so collecting inside `CPyPy_entry___place` alone counts exactly those
orders' own placing (checks, lock, matching, settling, resting or closing): the inclusive
cost of `CPyDef_entry___place` in `callgrind_annotate --inclusive=yes`, divided by the
`orders` this prints. The second pass must end in the first pass's state hash, which
proves the detour changed nothing. It also prints how many stops fired and how many of
those traded, for the `place` that `cascade._fire` calls in the ordinary callgrind run.
"""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.workload import WorkloadError, read_workload
from engine_svc.bench import START_TS, Script, build_commands, measured, new_engine
from engine_svc.core.cascade import cascade
from engine_svc.core.commands import PlaceOrder
from engine_svc.core.engine import Engine
from engine_svc.core.entry import place
from engine_svc.core.events import Event, OrderAccepted, TradeExecuted, TriggerFired
from engine_svc.core.state import state_hash


def _takers(events: list[Event]) -> set[int]:
    return {e.taker_order for e in events if type(e) is TradeExecuted}


def classify(script: Script) -> tuple[list[bool], int, int, str]:
    """Per command, whether it is an ordinary order that took liquidity; the stops fired
    and how many of those traded; the state hash at the end."""
    engine = new_engine()
    taking: list[bool] = []
    fired = fired_traded = 0
    ts = START_TS
    for command in script.commands:
        ts += 1
        events = engine.apply(command, ts)
        takers = _takers(events)
        first = events[0] if events else None
        taking.append(
            type(command) is PlaceOrder
            and type(first) is OrderAccepted
            and first.order_id in takers
        )
        for e in events:
            if type(e) is TriggerFired:
                fired += 1
                fired_traded += e.order_id in takers
    return taking, fired, fired_traded, state_hash(engine)


def _place_apart(engine: Engine, command: PlaceOrder, ts: int) -> None:
    """What `Engine.apply` does with a PlaceOrder, step for step, with `place` called from
    Python (keep it in step with `apply`: the state hash check catches a drift)."""
    trade_id = engine.next_trade_id
    events = place(engine, command, ts)
    if engine.closed_parents or (engine.next_trade_id != trade_id and engine.triggers):
        cascade(engine, command.market, events, ts)
    if events:
        engine.ts = ts


def replay_apart(script: Script, apart: list[bool]) -> str:
    """Replays with the marked orders placed through `_place_apart`; the state hash."""
    engine = new_engine()
    apply = engine.apply
    ts = START_TS
    with measured(None):  # the collector tuned as in the bench: its cost is counted too
        for command, alone in zip(script.commands, apart, strict=True):
            ts += 1
            if alone:
                assert type(command) is PlaceOrder
                _place_apart(engine, command, ts)
            else:
                apply(command, ts)
    return state_hash(engine)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine_svc.bench_taking", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--workload", type=Path, required=True, help="a JSONL workload file")
    parser.add_argument(
        "--orders",
        choices=("taking", "resting"),
        default="taking",
        help="which ordinary orders go through `place` from here (default taking)",
    )
    args = parser.parse_args(argv)
    try:
        script = build_commands(read_workload(args.workload))
    except (OSError, WorkloadError) as exc:
        print(f"bench_taking: {exc}", file=sys.stderr)
        return 2
    taking, fired, fired_traded, expected = classify(script)
    if args.orders == "taking":
        apart = taking
    else:
        apart = [
            type(c) is PlaceOrder and not t for c, t in zip(script.commands, taking, strict=True)
        ]
    got = replay_apart(script, apart)
    print(
        json.dumps(
            {
                "orders": args.orders,
                "placed_apart": sum(apart),
                "ordinary_orders": sum(type(c) is PlaceOrder for c in script.commands),
                "taking_orders": sum(taking),
                "stops_fired": fired,
                "fired_that_traded": fired_traded,
                "same_state": got == expected,
            }
        )
    )
    return 0 if got == expected else 1


if __name__ == "__main__":
    sys.exit(main())
