"""`make run`'s live status line: every STATUS_EVERY_S seconds, how many services answer
their health check, orders and trades per second, and how far the ledger is behind the
engine, read from the engine's and the ledger's /metrics pages.

    status: 7/7 up, 12.5 orders/s, 3.0 trades/s, ledger lag 0 events

A figure that cannot be read (metrics off, a service down, a counter that went back after a
restart) shows as "?", so the line itself says something is wrong.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from launcher.spec import ServiceSpec
from launcher.stack import LOCALHOST, StackSettings

STATUS_EVERY_S = 10.0


@dataclass(frozen=True)
class Reading:
    at: float  # time.monotonic()
    up: int
    total: int
    orders: float | None  # engine_orders_accepted_total
    trades: float | None  # engine_trades_total
    engine_seq: float | None
    ledger_seq: float | None


def format_status(previous: Reading | None, current: Reading) -> str:
    def rate(name: str) -> str:
        if previous is None:
            return "?"
        before, now = getattr(previous, name), getattr(current, name)
        elapsed = current.at - previous.at
        if before is None or now is None or now < before or elapsed <= 0:
            return "?"
        return f"{(now - before) / elapsed:.1f}"

    lag = "?"
    if current.engine_seq is not None and current.ledger_seq is not None:
        lag = f"{max(0, int(current.engine_seq - current.ledger_seq))}"
    return (
        f"status: {current.up}/{current.total} up, {rate('orders')} orders/s,"
        f" {rate('trades')} trades/s, ledger lag {lag} events"
    )


async def read_status(
    specs: Sequence[ServiceSpec], settings: StackSettings, http: aiohttp.ClientSession
) -> Reading:
    probes = [spec.probe for spec in specs if spec.probe is not None]
    answers = await asyncio.gather(*(probe.check(1.0) for probe in probes))
    engine, ledger = await asyncio.gather(
        _samples(http, settings.engine_metrics_port), _samples(http, settings.ledger_metrics_port)
    )
    return Reading(
        at=time.monotonic(),
        up=sum(answers),
        total=len(probes),
        orders=engine.get("engine_orders_accepted_total"),
        trades=engine.get("engine_trades_total"),
        engine_seq=engine.get("engine_last_seq"),
        ledger_seq=ledger.get("ledger_ingest_last_seq"),
    )


async def _samples(http: aiohttp.ClientSession, port: int) -> dict[str, float]:
    """The unlabelled samples of the /metrics page on `port`; none if it cannot be read."""
    if not port:
        return {}
    try:
        async with http.get(
            f"http://{LOCALHOST}:{port}/metrics", timeout=aiohttp.ClientTimeout(total=2)
        ) as response:
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return {}
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


async def print_status(specs: Sequence[ServiceSpec], settings: StackSettings) -> None:
    """Prints the status line every STATUS_EVERY_S seconds, until cancelled."""
    previous: Reading | None = None
    async with aiohttp.ClientSession() as http:
        while True:
            await asyncio.sleep(STATUS_EVERY_S)
            current = await read_status(specs, settings, http)
            print(format_status(previous, current), flush=True)
            previous = current
