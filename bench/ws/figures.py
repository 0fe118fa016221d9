"""What the benchmark reads: the gateway's memory and /metrics, what leaves stream_svc (the
load offered to each client), and the clients' processes' reports added up."""

from __future__ import annotations

import array
import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.ws import delays
from exchange.stream.v1 import stream_pb2 as spb
from exchange.stream.v1 import stream_pb2_grpc as spb_grpc
from servicekit.clock import now_us


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def gateway_metrics(session: aiohttp.ClientSession, base: str) -> dict[str, float]:
    """The gateway's WebSocket counters from /metrics."""
    wanted = ("gateway_ws_messages_total", "gateway_ws_slow_closed_total", "gateway_ws_connections")
    async with session.get(f"{base}/metrics") as response:
        text = await response.text()
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            values[name] = float(value)
    return values


def percentiles_ms(values_us: Sequence[int]) -> dict[str, float | None]:
    ordered = sorted(values_us)
    return {
        name: round(ordered[delays.rank(len(ordered), q)] / 1000, 2) if ordered else None
        for name, q in delays.QUANTILES.items()
    }


# -- what leaves stream_svc: the offered load, per client --------------------------------------


@dataclass
class UpstreamWatch:
    """Updates of the benchmark's topics as stream_svc sends them (snapshots left out)."""

    received_us: array.array[int] = field(default_factory=lambda: array.array("q"))
    delays_us: array.array[int] = field(default_factory=lambda: array.array("q"))
    trades_us: array.array[int] = field(default_factory=lambda: array.array("q"))  # received
    traded: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(self, stub: spb_grpc.StreamServiceAsyncStub, topic: str) -> None:
        async for item in stub.Subscribe(spb.SubscribeRequest(topic=topic)):
            if item.HasField("depth") and not item.depth.snapshot:
                ts = item.depth.ts_us
            elif item.HasField("trade") and not item.trade.recent:
                ts = item.trade.ts_us
                self.traded.set()
                self.trades_us.append(now_us())
            else:
                continue
            received = now_us()
            self.received_us.append(received)
            self.delays_us.append(received - ts)

    def window(self, t0: int, t1: int) -> dict[str, Any]:
        inside = [i for i, t in enumerate(self.received_us) if t0 <= t < t1]
        seconds = (t1 - t0) / 1e6
        return {
            "upstream_messages_per_second": round(len(inside) / seconds, 1),
            "upstream_trades_per_second": round(
                sum(t0 <= t < t1 for t in self.trades_us) / seconds, 1
            ),
            "stream_delay_ms": percentiles_ms([self.delays_us[i] for i in inside]),
        }


# -- the clients' processes, added up --------------------------------------------------------


def split(count: int, processes: int) -> list[tuple[int, int]]:
    """(first index, how many) of each process's clients: `count` shared as evenly as can be."""
    processes = min(processes, count)
    sizes = [count // processes + (i < count % processes) for i in range(processes)]
    return [(sum(sizes[:i]), n) for i, n in enumerate(sizes)]


def summed(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The processes' connection reports as one."""
    reasons: Counter[str] = Counter()
    for part in parts:
        reasons.update(part["failure_reasons"])
    return {
        "connected": sum(p["connected"] for p in parts),
        "connection_failures": sum(p["connection_failures"] for p in parts),
        "failure_reasons": dict(reasons.most_common(5)),
        "connect_seconds": max(p["connect_seconds"] for p in parts),
    }


def tallied(parts: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The processes' tallies (bench/ws/clients.py) as the figures of the window."""
    frames = sorted(n for p in parts for n in p["frames"]) or [0]
    received = [(stamps, receipts) for p in parts for stamps, _, receipts in p["received"]]
    trades = [(stamps, receipts) for p in parts for stamps, t, receipts in p["received"] if t]
    closes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for p in parts:
        closes.update(p["closes"])
        errors.update(p["error_frames"])
    return {
        # A message is a depth diff or a trade: one frame each, unless trades come batched.
        "delivered_per_second": round(delays.pairs(received) / seconds),
        "frames_per_second": round(sum(frames) / seconds),
        "trades_per_second": round(delays.pairs(trades) / seconds),
        "trade_frames_per_second": round(sum(p["trade_frames"] for p in parts) / seconds),
        "per_client_per_second": {
            "min": round(frames[0] / seconds, 1),
            "p50": round(frames[len(frames) // 2] / seconds, 1),
            "max": round(frames[-1] / seconds, 1),
        },
        "delay_ms": delays.percentiles_ms(received),
        "trade_delay_ms": delays.percentiles_ms(trades),
        "closes": dict(closes),
        "error_frames": dict(errors),
        **{
            k: sum(p[k] for p in parts)
            for k in ("depth_gaps", "trades_missing", "trades_repeated", "batches_empty")
        },
    }
