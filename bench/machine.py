"""Where the CPU and the time go: CPU seconds per process from /proc, the machine's busy
time, and py-spy profiles reduced to their top functions. Linux only; elsewhere the
figures are 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROFILE_RATE = 100  # samples per second
TOP = 15


@dataclass(frozen=True)
class CpuMeter:
    """CPU seconds (user + system) used by this process and by each named service.

    The machine may have fewer cores than busy processes (driver, engine, ledger,
    PostgreSQL), so how the CPU was shared explains rates better than wall time alone. A
    service counts with its children (PostgreSQL's backends). Linux /proc only; elsewhere
    services count as 0.
    """

    pids: dict[str, int]

    def sample(self) -> dict[str, float]:
        own = os.times()
        sample = {"bench": own.user + own.system}
        for name, pid in self.pids.items():
            sample[name] = sum(_cpu_seconds(p) for p in _process_tree(pid))
        return sample

    def since(self, before: dict[str, float]) -> dict[str, float]:
        after = self.sample()
        return {name: round(after[name] - before[name], 2) for name in after}


def _cpu_seconds(pid: int) -> float:
    """User and system time of `pid`, plus that of its children it has reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0  # gone, or not Linux
    fields = stat.rpartition(")")[2].split()  # the name may hold spaces; fields from 3 on
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _process_tree(root: int) -> list[int]:
    """`root` and its children (one level: PostgreSQL's postmaster and its backends)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # it exited meanwhile
        if ppid == root:
            children.append(int(stat.parent.name))
    return [root, *children]


_LISTEN = "0A"  # the TCP state in /proc/net/tcp


def listening_ports(pid: int) -> set[int]:
    """The TCP ports `pid` has a listening socket on (empty if it is gone, or not Linux)."""
    inodes: set[str] = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd) if fd.is_symlink() else ""
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        tables = [Path(f"/proc/{pid}/net/{name}").read_text() for name in ("tcp", "tcp6")]
    except OSError:
        return set()
    ports: set[int] = set()
    for table in tables:
        for line in table.splitlines()[1:]:
            fields = line.split()
            if fields[3] == _LISTEN and fields[9] in inodes:
                ports.add(int(fields[1].rpartition(":")[2], 16))
    return ports


def start_profiler(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    py_spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen(
        [
            str(py_spy) if py_spy.exists() else "py-spy",
            *("record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))),
            *("--rate", str(PROFILE_RATE), "--format", "raw", "--output", str(out)),
            "--nolineno",
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _package(frame: str) -> str:
    """`name (aiohttp/web.py)` → `aiohttp`: py-spy names files from their import root."""
    path = frame.rpartition(" (")[2].rstrip(")")
    return path.split("/", 1)[0].removesuffix(".py") or frame


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all processes, Linux)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(f) for f in fields]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def top_functions(collapsed: str) -> dict[str, Any]:
    """Own time (the sampled frame) and total time (anywhere on the stack) per function,
    as percentages of the samples in a py-spy raw (collapsed) profile."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        own[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for frame in set(frames):
            total[frame] += count

    def pct(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / samples, 1)] for name, n in counter.most_common(TOP)]

    if samples == 0:
        return {"samples": 0}
    return {
        "samples": samples,
        "own_percent": pct(own),
        "total_percent": pct(total),
        "own_percent_by_package": pct(packages),
    }
