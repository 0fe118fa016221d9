"""The WebSocket fan-out benchmark, run small: a few clients for a couple of seconds.

It runs the real stack (Redis, engine, publisher, stream_svc, gateway) and the load
processes as `make bench` does, and checks what the result says, never how fast: timings
on a shared machine are not a test's business.
"""

from __future__ import annotations

import asyncio
import resource
import sys
from typing import Any

import orjson
import pytest

from bench.suite import _figures
from bench.ws.clients import BenchClient, ClientTally

TRADE_TOPICS = {"single": "trade.TATA_INR", "batch": "trade@TATA_INR@batch"}


@pytest.mark.parametrize("trades", ["single", "batch"])
async def test_quick_run_delivers_depth_and_trades_to_every_client(trades: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.ws", "--quick", "--json", "--trades", trades,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(240):
        stdout, _ = await process.communicate()
    assert process.returncode == 0, f"bench.ws exited with {process.returncode}"
    result: dict[str, Any] = orjson.loads(stdout.splitlines()[-1])
    assert result["topics"] == ["depth.TATA_INR", TRADE_TOPICS[trades]]
    assert result["trades"] == trades
    [run] = result["fan_out"]
    assert "error" not in run, run["error"]
    assert run["connected"] == run["clients"] == 4
    assert run["connection_failures"] == 0
    # Orders flowed and the publisher published, though no ledger answers it.
    assert run["orders_per_second"] > 0
    assert run["orders_refused"] == {}
    assert run["upstream_messages_per_second"] > 0
    # Every client got frames, with the engine's timestamps, in unbroken chains.
    assert run["delivered_frames_per_second"] > 0
    assert run["delivered_messages_per_second"] >= run["delivered_frames_per_second"]
    assert run["per_client_messages_per_second"]["min"] > 0
    assert set(run["delay_ms"]) == {"p50", "p99", "max"}
    # Trades are never merged (no gap, below, proves none was lost).
    assert run["upstream_trades_per_second"] > 0
    assert run["trades_delivered_fraction"] > 0
    assert 0 < run["delivered_trade_frames_per_second"] <= run["delivered_trades_per_second"]
    if trades == "single":
        assert run["delivered_trade_frames_per_second"] == run["delivered_trades_per_second"]
    assert run["trade_delay_ms"]["p50"] is not None
    assert run["delay_ms"]["p50"] is not None
    assert run["depth_gaps"] == run["trades_missing"] == run["trades_repeated"] == 0
    assert run["batches_empty"] == 0
    assert run["slow_consumer_closes"] == 0
    assert run["closes"] == {}
    assert run["error_frames"] == {}
    gateway = run["gateway"]
    assert {"memory_per_connection_kb", "cpu_percent", "rss_before_mb", "rss_end_mb"} <= set(
        gateway
    )
    assert gateway["connections_at_end"] == 4
    assert gateway["frames_queued_per_second"] > 0
    assert {"gateway", "stream", "publisher", "engine", "clients", "driver"} <= set(
        run["cpu_seconds"]
    )
    assert run["clients_cpu_percent"] >= 0
    assert run["client_processes"] == 1  # --quick
    assert set(run["restarts"].values()) == {0}
    # `make bench` shows it as one line per N.
    assert _figures(result).startswith(f"4 clients (4 connected), trades {trades}: ")


def _batch(*ids: int, sent_us: int = 1_000) -> bytes:
    trades = [{"e": "trade", "E": sent_us, "s": "TATA_INR", "t": t} for t in ids]
    return orjson.dumps({"stream": "trade@TATA_INR@batch", "data": trades})


async def test_the_clients_check_catches_a_batch_missing_repeating_or_without_trades() -> None:
    tally = ClientTally(1, window=(0, sys.maxsize))
    client = BenchClient(0, ("trade@TATA_INR@batch",), tally)
    client.text(_batch(1, 2, 3))
    client.text(_batch(4))
    assert (tally.trades_missing, tally.trades_repeated, tally.batches_empty) == (0, 0, 0)
    client.text(_batch(5, 7))  # 6 missing inside a frame
    client.text(_batch(9))  # 8 missing between frames
    client.text(_batch(9, 10))  # 9 again
    client.text(_batch())
    assert (tally.trades_missing, tally.trades_repeated, tally.batches_empty) == (2, 1, 1)
    # Each trade of a frame timed from its own E; the empty frame counted as nothing.
    assert len(tally.trade_delays_us) == 3 + 1 + 2 + 1 + 2
    assert (client.counted, tally.trade_frames) == (5, 5)


def _few_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


async def test_a_run_that_cannot_be_made_says_what_failed() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.ws", "--json", "--clients", "2000",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        preexec_fn=_few_descriptors,
    )  # fmt: skip
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    assert process.returncode == 1
    [run] = orjson.loads(stdout.splitlines()[-1])["fan_out"]
    assert run["clients"] == 2000
    assert run["error"].startswith("RuntimeError: RLIMIT_NOFILE hard limit 1024 < 2256")
    assert b"2,000 clients: FAILED: RuntimeError: RLIMIT_NOFILE" in stderr
