"""The WebSocket fan-out benchmark, run small: a few clients for a couple of seconds.

It runs the real stack (Redis, engine, publisher, stream_svc, gateway) and the load
processes as `make bench` does, and checks what the result says, never how fast: timings
on a shared machine are not a test's business.
"""

from __future__ import annotations

import array
import asyncio
import random
import resource
import sys
from typing import Any

import orjson
import pytest

from bench.suite import _figures
from bench.ws import delays, figures
from bench.ws.clients import MEMO_FRAMES, BenchClient, ClientTally

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


def _depth(first: int, last: int, sent_us: int = 1_000) -> bytes:
    data = {"e": "depthUpdate", "E": sent_us, "s": "TATA_INR", "U": first, "u": last}
    return orjson.dumps({"stream": "depth.TATA_INR", "data": {**data, "b": [], "a": []}})


def _trade(t: int, sent_us: int = 1_000) -> bytes:
    data = {"e": "trade", "E": sent_us, "s": "TATA_INR", "t": t}
    return orjson.dumps({"stream": "trade.TATA_INR", "data": data})


def _checks(tally: ClientTally) -> tuple[int, int, int, int]:
    return tally.trades_missing, tally.trades_repeated, tally.batches_empty, tally.depth_gaps


async def test_the_clients_check_catches_a_batch_missing_repeating_or_without_trades() -> None:
    tally = ClientTally(1, window=(0, sys.maxsize))
    client = BenchClient(0, ("trade@TATA_INR@batch",), tally)
    client.text(_batch(1, 2, 3))
    client.text(_batch(4))
    assert _checks(tally) == (0, 0, 0, 0)
    client.text(_batch(5, 7))  # 6 missing inside a frame
    client.text(_batch(9))  # 8 missing between frames
    client.text(_batch(9, 10))  # 9 again
    client.text(_batch())
    assert _checks(tally) == (2, 1, 1, 0)
    # Each trade of a frame timed from its own E; the empty frame counted as nothing.
    assert tally.result()["trade_frames"] == 5
    assert delays.pairs([(s, r) for s, _, r in tally.result()["received"]]) == 3 + 1 + 2 + 1 + 2
    assert client.counted == 5


async def test_remembered_frames_are_checked_against_each_clients_own_last_ids() -> None:
    """The same bytes to several clients (as the gateway writes them): parsed once, but each
    client's gaps, repeats and empty batches counted as if it had parsed them itself."""
    tally = ClientTally(3, window=(0, sys.maxsize))
    ahead, behind, fresh = (BenchClient(i, ("trade@TATA_INR@batch",), tally) for i in range(3))
    ahead.text(_batch(1, 2, 3))
    ahead.text(_batch(4, 5))
    behind.text(_batch(1, 2, 3))
    assert len(tally.memo.frames) == 2
    behind.text(_batch(4, 5))
    fresh.text(_batch(4, 5))  # nothing before: no gap
    assert _checks(tally) == (0, 0, 0, 0)
    behind.text(_batch(7, 9))  # parsed for behind: 6 and 8 missing
    ahead.text(_batch(7, 9))  # remembered: 6 and 8 missing for ahead too
    assert _checks(tally) == (4, 0, 0, 0)
    fresh.text(_batch(1, 2, 3))  # remembered, but fresh had 5 already: 3 repeated
    fresh.text(_batch(7, 9))  # 6 and 8 missing
    assert _checks(tally) == (6, 3, 0, 0)
    for client in (ahead, behind, fresh):
        client.text(_batch())
    assert _checks(tally) == (6, 3, 3, 0)
    assert len(tally.memo.frames) == 4  # each distinct frame parsed once


async def test_remembered_depth_and_single_trades_are_checked_for_every_client() -> None:
    tally = ClientTally(2, window=(0, sys.maxsize))
    first, second = (BenchClient(i, ("depth.TATA_INR", "trade.TATA_INR"), tally) for i in range(2))
    for client in (first, second):
        client.text(_depth(1, 4))
        client.text(_trade(1))
    first.text(_depth(5, 6))
    first.text(_trade(2))
    second.text(_depth(7, 8))  # 5..6 skipped
    second.text(_trade(3))  # 2 skipped
    assert _checks(tally) == (1, 0, 0, 1)
    first.text(_depth(7, 8))
    first.text(_trade(3))
    second.text(_depth(7, 8))  # again: not after 8
    second.text(_trade(3))  # again: a repeat
    assert _checks(tally) == (1, 1, 0, 2)
    assert len(tally.memo.frames) == 6
    assert (first.counted, second.counted) == (6, 6)


async def test_the_memo_forgets_the_oldest_frames_beyond_its_bound() -> None:
    tally = ClientTally(1, window=(0, sys.maxsize))
    client = BenchClient(0, ("trade.TATA_INR",), tally)
    for t in range(1, MEMO_FRAMES + 11):
        client.text(_trade(t))
    assert len(tally.memo.frames) == MEMO_FRAMES
    assert _trade(10) not in tally.memo.frames
    assert _trade(11) in tally.memo.frames
    assert len(tally.result()["received"]) == MEMO_FRAMES + 10  # each one's receipts kept


def _naive(frames: list[delays.Received]) -> list[int]:
    return [r - e for stamps, receipts in frames for e in stamps for r in receipts]


def test_delays_counted_from_receipts_equal_every_pair_listed() -> None:
    rng = random.Random(29)
    for _ in range(200):
        frames: list[delays.Received] = []
        for _ in range(rng.randint(1, 8)):
            stamps = [rng.randint(0, 2_000) for _ in range(rng.randint(0, 5))]
            receipts = sorted(rng.randint(1_000, 3_000) for _ in range(rng.randint(0, 6)))
            frames.append((stamps, array.array("q", receipts)))
        listed = sorted(_naive(frames))
        assert delays.pairs(frames) == len(listed)
        assert figures.percentiles_ms(listed) == delays.percentiles_ms(frames)
        assert [delays.kth(frames, k) for k in range(len(listed))] == listed


def test_the_processes_tallies_add_up_as_their_delays_listed() -> None:
    rng = random.Random(30)
    parts, listed, trades_listed = [], [], []
    for _ in range(3):
        received = []
        for _ in range(20):
            trades = rng.random() < 0.5
            stamps = [rng.randint(0, 50_000) for _ in range(rng.randint(1, 10) if trades else 1)]
            receipts = array.array("q", sorted(rng.randint(60_000, 90_000) for _ in range(9)))
            received.append((stamps, trades, receipts))
            listed += _naive([(stamps, receipts)])
            trades_listed += _naive([(stamps, receipts)]) if trades else []
        parts.append(
            {
                "frames": [1],
                "received": received,
                "closes": {},
                "error_frames": {},
                "trade_frames": 0,
            }
            | dict.fromkeys(("depth_gaps", "trades_missing", "trades_repeated", "batches_empty"), 0)
        )
    tallied = figures.tallied(parts, seconds=1.0)
    assert tallied["delivered_per_second"] == len(listed)
    assert tallied["trades_per_second"] == len(trades_listed)
    assert tallied["delay_ms"] == figures.percentiles_ms(listed)
    assert tallied["trade_delay_ms"] == figures.percentiles_ms(trades_listed)


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
