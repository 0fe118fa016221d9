"""Recovery time: how long a restart takes to replay a journal of N commands.

`python -m engine_svc.bench_recovery --commands 1000000 --json` writes a journal
of a generated workload through the service's sequencer (no snapshot), then
times `recover()` from it and checks the recovered state_hash equals the
original's.
"""

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench.workload import DEFAULT_DEPTH, generate
from engine_svc.bench import build_commands, replay_journaled
from engine_svc.core.state import state_hash
from engine_svc.recovery import recover
from servicekit.memory import collect_rarely


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    script = build_commands(list(generate(args.commands, args.seed, DEFAULT_DEPTH)))
    with tempfile.TemporaryDirectory(prefix="bench-recovery-") as tmp:
        journal_dir = Path(tmp) / "journal"
        engine, _ = asyncio.run(replay_journaled(journal_dir, script))
        journal_bytes = sum(p.stat().st_size for p in journal_dir.iterdir())
        collect_rarely()  # as the service does before it recovers
        started = time.perf_counter()
        recovered = recover(journal_dir, Path(tmp) / "snapshots")
        seconds = time.perf_counter() - started
    if state_hash(recovered) != state_hash(engine):
        sys.exit("recovered state differs from the original")
    result = {
        "commands": args.commands,
        "events": engine.seq,
        "journal_bytes": journal_bytes,
        "recovery_seconds": round(seconds, 2),
        "commands_per_second": round(args.commands / seconds),
    }
    print(orjson.dumps(result).decode() if args.json else result)


if __name__ == "__main__":
    main()
