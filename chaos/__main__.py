"""`python -m chaos --seconds N --seed S --report PATH`: run the fault suite, write the JSON
report, print a summary; exit 1 if anything was lost, duplicated or wrong.

The services' own output goes to a log file next to the report (PATH with .log), as their
kills make them say a lot that is expected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import tempfile
from pathlib import Path

from chaos.report import build, passed, summary
from chaos.suite import Config, Run, run_suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--seconds", type=float, default=180, help="run trials this long")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report", type=Path, default=Path("reports/chaos-report.json"))
    parser.add_argument("--trial-seconds", type=float, default=45, help="load per trial")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs per trial")
    parser.add_argument("--freezes", type=int, default=1, help="SIGSTOPs per trial")
    parser.add_argument(
        "--overlaps", type=int, default=1,
        help="pairs of SIGKILLs per trial, the second while the first service restarts",
    )  # fmt: skip
    parser.add_argument(
        "--backend", choices=("plain", "timescale"), default="plain",
        help="the ledger on plain PostgreSQL or on TimescaleDB (built by `make deps`)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = Config(
        seconds=args.seconds,
        seed=args.seed,
        trial_seconds=args.trial_seconds,
        users=args.users,
        kills=args.kills,
        freezes=args.freezes,
        overlaps=args.overlaps,
        timescale=args.backend == "timescale",
    )
    args.report.parent.mkdir(parents=True, exist_ok=True)
    services_log = args.report.with_suffix(".log")
    with (
        tempfile.TemporaryDirectory(prefix="chaos-") as root,
        services_log.open("w") as log_file,
        contextlib.redirect_stdout(log_file),  # where the Supervisor relays children's output
    ):
        run = asyncio.run(_run(config, Path(root)))
    report = build(run, [sys.executable, "-m", "chaos", *(argv or sys.argv[1:])])
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print("\n".join(summary(report)))
    print(f"report: {args.report}; services' output: {services_log}")
    return 0 if passed(report) else 1


async def _run(config: Config, root: Path) -> Run:
    # SIGTERM (a timeout, a CI runner) unwinds like Ctrl-C: the Supervisor stops every service.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await run_suite(config, root)


if __name__ == "__main__":
    sys.exit(main())
