"""`python -m bench.suite` (`make bench`): run the benchmarks and record them.

The suite is a list of named steps (STEPS). Each runs a benchmark module with
`--json` in a fresh process, on a workload generated into bench/workloads/ first
if it is missing. Results go to bench/results/engine.json, with the
machine (nproc, Python), the date, the git commit and every command line, so
that two runs can be compared; a short table is printed. A step whose

To add a benchmark, add a Workload and/or a Step. Exit status: 0 if every step
that ran succeeded, 1 otherwise.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.workload import DEFAULT_DEPTH, write_workload
from bench.ws.bench import summary_line as ws_summary_line

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS_DIR = ROOT / "bench" / "workloads"
RESULTS_FILE = ROOT / "bench" / "results" / "engine.json"


@dataclass(frozen=True)
class Workload:
    name: str
    commands: int
    seed: int
    depth: int = DEFAULT_DEPTH
    stops: int = 0  # stop-limit orders kept pending

    @property
    def path(self) -> Path:
        return WORKLOADS_DIR / f"{self.name}.jsonl"

    def ensure(self) -> None:
        if self.path.exists():
            return
        print(f"generating {self.path.relative_to(ROOT)} ...", flush=True)
        summary = write_workload(self.path, self.commands, self.seed, self.depth, self.stops)
        print(f"  {summary}", flush=True)

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path.relative_to(ROOT)),
            "commands": self.commands,
            "seed": self.seed,
            "depth": self.depth,
            "stops": self.stops,
            "sha256": hashlib.sha256(self.path.read_bytes()).hexdigest(),
        }


@dataclass(frozen=True)
class Step:
    name: str
    module: str = "engine_svc.bench"  # run as `python -m MODULE --json ...`
    workload: Workload | None = None  # passed as --workload, generated first if missing
    args: tuple[str, ...] = ()
    journal: bool = False  # journal to a fresh directory under bench/

    def command(self, journal_dir: Path | None) -> list[str]:
        command = [sys.executable, "-m", self.module, "--json", *self.args]
        if self.workload is not None:
            command += ["--workload", str(self.workload.path.relative_to(ROOT))]
        if journal_dir is not None:
            command += ["--journal", str(journal_dir)]
        return command


MIXED_200K = Workload("mixed-200k", commands=200_000, seed=1)
STOPS_200K = Workload("stops-200k", commands=200_000, seed=1, stops=10_000)

STEPS = [
    Step("mixed-200k", workload=MIXED_200K),
    Step("mixed-200k-verify", workload=MIXED_200K, args=("--verify",)),
    Step("mixed-200k-journal", workload=MIXED_200K, journal=True),
    Step("stops-200k", workload=STOPS_200K),
    Step("stops-200k-verify", workload=STOPS_200K, args=("--verify",)),
    Step("grpc-64-clients", module="engine_svc.bench_grpc", args=("--clients", "64")),
    Step("recovery-1m", module="engine_svc.bench_recovery", args=("--commands", "1000000")),
    Step("ledger-ingest-200k", module="bench.ingest", args=("--commands", "200000")),
    Step("ledger-queries-1m", module="ledger_svc.bench_queries", args=("--trades", "1000000")),
    Step(
        "gateway-64-clients",
        module="bench.orders",
        args=("--clients", "64", "--seconds", "10", "--profile", "bench/results/profile"),
    ),
    Step(
        "gateway-1000-clients",
        module="bench.orders",
        args=("--clients", "1000", "--seconds", "10", "--modes", "single"),
    ),
    Step("gateway-ws", module="bench.ws", args=("--clients", "1000,10000")),
]


def run_step(step: Step) -> dict[str, Any]:
    if step.workload is not None:
        step.workload.ensure()
    print(f"running {step.name} ...", flush=True)
    if step.journal:
        (ROOT / "bench").mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="journal-", dir=ROOT / "bench") as tmp:
            return _run(step, step.command(Path(tmp)))
    return _run(step, step.command(None))


def _run(step: Step, command: list[str]) -> dict[str, Any]:
    # stderr passes through: it carries the bench's own complaints (rejections, verify).
    proc = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    record: dict[str, Any] = {
        "name": step.name,
        "workload": step.workload.name if step.workload else None,
        "command": command,
        "status": "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})",
    }
    lines = proc.stdout.strip().splitlines()
    try:
        record["result"] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        record["status"] = f"failed (exit {proc.returncode}, no JSON result)"
    return record


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip()


def _nproc() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 0


def _figures(r: dict[str, Any]) -> str:
    """The headline numbers of one step's result, whichever benchmark made it."""
    if "recovery_seconds" in r:
        return f"{r['commands']:,} commands recovered in {r['recovery_seconds']} s"
    if "commands_per_second" in r:
        text = f"{r['commands_per_second']:,} commands/s, p50 {r['p50_us']:.1f} µs, "
        text += f"p99 {r['p99_us']:.1f} µs, {r['trades']:,} trades"
        return text + (", verified" if r.get("verified") is True else "")
    if "unary_place_order" in r:
        u, s = r["unary_place_order"], r["execute_stream"]
        return (
            f"unary {u['orders_per_second']:,} orders/s (p99 {u['p99_ms']} ms); "
            f"stream {s['orders_per_second']:,} orders/s (p99 {s['p99_ms']} ms)"
        )
    if "ingest_events_per_second" in r:
        return _ingest_figures(r)
    if "modes" in r:
        return _gateway_figures(r)
    if "fan_out" in r:
        return "; ".join(ws_summary_line(run) for run in r["fan_out"])
    if "queries" in r:
        latencies = (f"{name} {q['p50_ms']}/{q['p99_ms']}" for name, q in r["queries"].items())
        return "p50/p99 ms: " + ", ".join(latencies)
    return json.dumps(r)


def _ingest_figures(r: dict[str, Any]) -> str:
    text = (
        f"ingest {r['ingest_events_per_second']:,} events/s "
        f"(engine {r['engine_events_per_second']:,}), max lag {r['max_lag_seconds']} s, "
        f"caught up {r['catch_up_seconds']} s after the burst"
    )
    if (replay := r["replay"]["events_per_second"]) is not None:
        text += f"; replay {replay:,} events/s"
    return text + (", verified" if r.get("verified") is True else ", NOT verified")


def _gateway_figures(r: dict[str, Any]) -> str:
    parts = []
    for mode, m in r["modes"].items():
        unit, key = (
            ("orders", "orders_per_second") if "engine_seq" in m else ("req", "requests_per_second")
        )
        rate = f"{m[key]:,} {unit}/s"
        errors = "".join(f", {n:,}x {s}" for s, n in m["statuses"].items() if s != "200")
        parts.append(
            f"{mode}@{m['clients']} {rate} (p50/p99/p99.9 {m['p50_ms']}/{m['p99_ms']}/"
            f"{m['p99_9_ms']} ms{errors})"
        )
    return "; ".join(parts)


def _table(steps: list[dict[str, Any]]) -> str:
    width = max(len(s["name"]) for s in steps)
    lines = []
    for s in steps:
        detail = _figures(s["result"]) if "result" in s else s["status"]
        lines.append(f"{s['name'].ljust(width)}  {detail}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    names = [step.name for step in STEPS]
    parser = argparse.ArgumentParser(
        prog="python -m bench.suite", description="Run and record the benchmarks."
    )
    parser.add_argument("--only", nargs="+", choices=names, metavar="STEP", help=", ".join(names))
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    selected = [step for step in STEPS if not args.only or step.name in args.only]

    started = datetime.datetime.now(datetime.UTC)
    steps = [run_step(step) for step in selected]
    dirty = _git("status", "--porcelain")
    results = {
        "suite": "engine",
        "date": started.isoformat(timespec="seconds"),
        "command_line": [sys.executable, "-m", "bench.suite", *arguments],
        "machine": {
            "nproc": _nproc(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
        },
        "git": {"commit": _git("rev-parse", "HEAD"), "dirty": bool(dirty)},
        "workloads": {
            s.workload.name: s.workload.describe()
            for s in selected
            if s.workload is not None and s.workload.path.exists()
        },
        "steps": steps,
    }
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(_table(steps))
    print(f"\nresults: {RESULTS_FILE.relative_to(ROOT)}")
    return 1 if any(s["status"] != "ok" for s in steps) else 0


if __name__ == "__main__":
    sys.exit(main())
