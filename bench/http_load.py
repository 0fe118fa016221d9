"""Driving the gateway: one request loop per maker, each on its own keep-alive connection,
and the figures of a mode (rates, latency percentiles, CPU per order)."""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.http_client import HttpConnection
from bench.services import (
    LOCALHOST,
)
from bench.traders import Request


@dataclass
class Tally:
    """What one mode's requests came back with."""

    latencies: list[float] = field(default_factory=list)  # seconds, 200 replies only
    statuses: Counter[str] = field(default_factory=Counter)
    orders: int = 0  # accepted by the engine
    rejected_orders: int = 0  # in a 200 batch reply, or a non-200 single order
    first_error: str | None = None

    def record(self, status: int, body: bytes, seconds: float, orders: int) -> None:
        self.statuses[str(status)] += 1
        if status != 200:
            self.rejected_orders += orders
            if self.first_error is None:
                self.first_error = f"{status} {body[:300].decode(errors='replace')}"
            return
        self.latencies.append(seconds)
        if orders > 1:
            failed = sum(1 for item in orjson.loads(body) if "code" in item)
            self.orders += orders - failed
            self.rejected_orders += failed
        else:
            self.orders += orders


async def drive(
    port: int,
    make: Sequence[Callable[[], Request]],
    seconds: float,
    tls: ssl.SSLContext | None = None,
) -> tuple[Tally, float]:
    """Run one loop per request maker, each on its own keep-alive connection (TLS with
    `tls`), for `seconds`; the tally and the elapsed time."""
    tally = Tally()
    deadline = time.perf_counter() + seconds

    async def loop(next_request: Callable[[], Request]) -> None:
        connection: HttpConnection | None = None
        try:
            while time.perf_counter() < deadline:
                method, path, body, headers, orders = next_request()
                started = time.perf_counter()
                try:
                    if connection is None:
                        connection = await HttpConnection.open(LOCALHOST, port, tls)
                    status, payload = await connection.request(method, path, headers, body)
                except OSError as exc:  # ConnectionError included: open a new one
                    tally.statuses[type(exc).__name__] += 1
                    tally.rejected_orders += orders
                    if connection is not None:
                        connection.close()
                    connection = None
                    continue
                tally.record(status, payload, time.perf_counter() - started, orders)
        finally:
            if connection is not None:
                connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(loop(m) for m in make))
    return tally, time.perf_counter() - started


def cpu_budget(cpu_seconds: dict[str, float], orders: int, target: int) -> dict[str, Any]:
    """Each process's CPU milliseconds per accepted order, their sum, and what the sum
    allows on this machine's cores."""
    if not orders:
        return {}
    per_order = {name: round(1000 * s / orders, 3) for name, s in cpu_seconds.items()}
    total = 1000 * sum(cpu_seconds.values()) / orders
    cores = len(os.sched_getaffinity(0))
    return {
        "cpu_ms_per_order": per_order,
        "cpu_ms_per_order_total": round(total, 3),
        "orders_per_second_at_full_cpu": round(cores * 1000 / total) if total else None,
        "target_orders_per_second": target,
        "cores_needed_at_target": round(total * target / 1000, 2),
    }


def _percentile_ms(ordered: Sequence[float], q: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 3)


def summary(tally: Tally, seconds: float) -> dict[str, Any]:
    ordered = sorted(tally.latencies)
    requests = sum(tally.statuses.values())
    return {
        "seconds": round(seconds, 3),
        "requests": requests,
        "requests_per_second": round(requests / seconds),
        "orders": tally.orders,
        "orders_per_second": round(tally.orders / seconds),
        "rejected_orders": tally.rejected_orders,
        "statuses": dict(tally.statuses),
        "first_error": tally.first_error,
        "p50_ms": _percentile_ms(ordered, 0.5),
        "p99_ms": _percentile_ms(ordered, 0.99),
        "p99_9_ms": _percentile_ms(ordered, 0.999),
        "max_ms": _percentile_ms(ordered, 1.0),
    }
