"""The ledger benchmarks: their bookkeeping, and a small run of each as `make bench` runs them.

The small runs use the test server's database (`--database-url`) rather than starting
PostgreSQL, and check what the results say, never how fast: timings on a shared machine
are not a test's business.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson
import pytest

from bench.burst import Acks, workload_batches
from bench.ingest_watch import IngestWatch, max_backlog, max_lag
from exchange.engine.v1 import engine_pb2 as epb
from launcher.postgres import timescale_bin_dir
from ledger_svc.bench_queries import SHAPES
from tests.conftest import BOTH_BACKENDS


def _acks(*points: tuple[float, int]) -> Acks:
    return Acks(times=[t for t, _ in points], seqs=[s for _, s in points])


def _watch(*points: tuple[float, int]) -> IngestWatch:
    watch = IngestWatch(stub=None)  # type: ignore[arg-type]  # never polls here
    watch.times, watch.seqs = [t for t, _ in points], [s for _, s in points]
    return watch


def test_lag_is_from_acknowledgement_to_the_first_poll_that_saw_it_stored() -> None:
    # The engine acknowledges 100 at 1.0 and 200 at 2.0; the ledger is seen at 150 at 2.5
    # and at 200 at 3.5: seq 100 waited 1.5 s, seq 200 1.5 s, and 50 events were behind
    # at 2.5 (200 acknowledged, 150 stored).
    acks = _acks((1.0, 100), (2.0, 200))
    watch = _watch((0.5, 0), (2.5, 150), (3.5, 200))
    assert max_lag(acks, watch) == 1.5
    assert max_backlog(acks, watch, since=1.0) == 50


def test_a_seq_stored_before_its_reply_arrived_counts_as_no_lag() -> None:
    acks = _acks((1.0, 100))
    watch = _watch((0.9, 100))
    assert max_lag(acks, watch) == 0.0
    assert max_backlog(acks, watch, since=0.0) == 0


def test_cancels_name_an_earlier_add_by_its_client_id_and_owner() -> None:
    placed: dict[int, int] = {}  # client order id -> user
    commands = [c for batch in workload_batches(3000, seed=2, batch=100) for c in batch.commands]
    assert len(commands) == 3000
    assert [c.request_id for c in commands] == list(range(3000))
    cancels = 0
    for command in commands:
        if command.WhichOneof("body") == "place_order":
            placed[command.place_order.client_order_id] = command.place_order.user_id
        else:
            cancel: epb.CancelOrderRequest = command.cancel_order
            assert placed.pop(cancel.client_order_id) == cancel.user_id
            cancels += 1
    assert cancels > 100


async def _run_json(module: str, *args: str) -> dict[str, Any]:
    """Run `python -m module --json args` like the suite does; its last stdout line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, "--json", *args, stdout=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(240):
        stdout, _ = await process.communicate()
    assert process.returncode == 0, f"{module} exited with {process.returncode}"
    result: dict[str, Any] = orjson.loads(stdout.splitlines()[-1])
    return result


def _preloads_timescale(r: dict[str, Any]) -> bool:
    return "timescaledb" in r["postgres_settings"]["shared_preload_libraries"]


@BOTH_BACKENDS
async def test_ingest_bench_reports_a_caught_up_ledger(database_url: str, backend: str) -> None:
    r = await _run_json("bench.ingest", "--commands", "2000", "--database-url", database_url)
    assert r["verified"] is True
    assert r["ledger_last_seq"] == r["engine_seq"] > r["events"] > 2000
    assert r["rejections"] == 0
    assert r["stored_trades"] == r["trades"] > 0
    for key in ("engine_events_per_second", "ingest_events_per_second", "ingest_seconds"):
        assert r[key] > 0, key
    assert r["ingest_seconds"] >= r["engine_seconds"]
    assert 0 <= r["catch_up_seconds"] <= r["ingest_seconds"]
    assert 0 <= r["max_lag_seconds"] <= r["ingest_seconds"]
    assert r["max_backlog_events"] >= 0
    assert set(r["cpu_seconds"]) >= {"bench", "engine", "ledger"}
    assert r["replay"]["events"] <= r["engine_seq"]
    assert r["postgres_settings"]["fsync"] in ("on", "off")
    assert _preloads_timescale(r) == (backend == "timescale")


@BOTH_BACKENDS
async def test_query_bench_reports_latency_of_every_query(database_url: str) -> None:
    r = await _run_json(
        "ledger_svc.bench_queries",
        "--trades", "20000", "--calls", "20", "--database-url", database_url,
    )  # fmt: skip
    assert r["markets"] == list(SHAPES)
    assert r["candles"] > 0
    queries = r["queries"]
    assert set(queries) == {"klines_1m_500", "klines_1h_500", "ticker", "tickers", "trades_100"}
    for name, q in queries.items():
        assert 0 < q["p50_ms"] <= q["p99_ms"], name
    assert queries["klines_1m_500"]["rows"] == queries["klines_1h_500"]["rows"] == 500
    assert queries["tickers"]["rows"] == len(SHAPES)
    assert queries["trades_100"]["rows"] == 100
    # The 24 hours up to now hold about a thirtieth of a market's trades.
    per_market_day = 20000 / len(SHAPES) / 30
    assert 0.9 * per_market_day <= queries["ticker"]["rows"] <= 1.1 * per_market_day


async def test_query_bench_starts_the_server_of_its_backend() -> None:
    if timescale_bin_dir() is None:
        pytest.skip("TimescaleDB is not built here: `make deps` builds it from ../shared/vendor")
    r = await _run_json(
        "ledger_svc.bench_queries", "--trades", "2000", "--calls", "5", "--backend", "timescale"
    )
    assert _preloads_timescale(r)
    assert r["queries"]["tickers"]["rows"] == len(SHAPES)
