"""`make run`'s status line: the figures read from real health checks and /metrics pages,
and the line made of them."""

from __future__ import annotations

import asyncio
import dataclasses

import aiohttp

from launcher.ports import free_port
from launcher.spec import ServiceSpec
from launcher.stack import StackSettings
from launcher.status import Reading, format_status, read_status
from ledger_svc.server import LedgerRuntime
from servicekit.metrics import serve_metrics
from tests.engine.conftest import RunningEngine, engine
from tests.gateway.conftest import ledger_address
from tests.monitoring.test_metrics import trade_once

__all__ = ["engine", "ledger_address"]


def reading(at: float, **figures: float | None) -> Reading:
    values: dict[str, float | None] = {
        "orders": 100, "trades": 40, "engine_seq": 500, "ledger_seq": 497,
    }  # fmt: skip
    values.update(figures)
    return Reading(at=at, up=7, total=7, **values)


def test_the_line_gives_rates_since_the_last_reading_and_the_ledger_lag() -> None:
    before = reading(10.0)
    now = reading(20.0, orders=225, trades=70, engine_seq=900, ledger_seq=900)
    assert format_status(before, now) == (
        "status: 7/7 up, 12.5 orders/s, 3.0 trades/s, ledger lag 0 events"
    )
    assert format_status(None, before) == (
        "status: 7/7 up, ? orders/s, ? trades/s, ledger lag 3 events"
    )


def test_what_cannot_be_read_shows_as_a_question_mark() -> None:
    before = reading(10.0)
    restarted = dataclasses.replace(reading(20.0, orders=3, ledger_seq=None), up=6)
    assert format_status(before, restarted) == (
        "status: 6/7 up, ? orders/s, 0.0 trades/s, ledger lag ? events"
    )


async def test_figures_come_from_the_services(
    engine: RunningEngine, ledger_address: tuple[str, LedgerRuntime]
) -> None:
    address, ledger = ledger_address
    engine_page = await serve_metrics(engine.runtime.registry, "127.0.0.1", 0)
    ledger_page = await serve_metrics(ledger.registry, "127.0.0.1", 0)
    settings = StackSettings(
        engine_metrics_port=engine_page.addresses[0][1],
        ledger_metrics_port=ledger_page.addresses[0][1],
    )
    specs = [
        ServiceSpec(name="engine", argv=["-"], health_address=engine.address),
        ServiceSpec(name="ledger", argv=["-"], health_address=address),
        ServiceSpec(name="gone", argv=["-"], health_address=f"127.0.0.1:{free_port()}"),
    ]
    try:
        async with aiohttp.ClientSession() as http:
            first = await read_status(specs, settings, http)
            await trade_once(engine)
            assert ledger.ingest is not None
            async with asyncio.timeout(30):
                await ledger.ingest.wait_for(engine.runtime.engine.seq)
            second = await read_status(specs, settings, http)
    finally:
        await engine_page.cleanup()
        await ledger_page.cleanup()
    assert (second.up, second.total) == (2, 3)
    assert (second.orders, second.trades) == (
        (first.orders or 0) + 2,
        (first.trades or 0) + 1,
    )
    assert first.orders is not None
    assert second.engine_seq == second.ledger_seq == engine.runtime.engine.seq
    assert format_status(first, second).endswith("ledger lag 0 events")
