"""The gateway benchmark: its signing and profile bookkeeping, and a tiny run of every mode.

The run uses the test server's database (`--database-url`) and checks what the result
says, never how fast: timings on a shared machine are not a test's business.
"""

from __future__ import annotations

import asyncio
import base64
import random
import sys
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.http_load import cpu_budget
from bench.machine import top_functions
from bench.orders import ORDER_MODES
from bench.traders import Trader, batch_request, binance_request
from tradekit.backpack import signing_strings
from tradekit.binance import hmac_signature


def _trader(buy: bool) -> Trader:
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes_raw()).decode()
    return Trader(
        user_id=1, key=key, public_key=public, buy=buy, hmac_key="K" * 64, hmac_secret="s" * 64
    )


def test_a_batch_is_signed_as_the_gateway_verifies_it() -> None:
    trader = _trader(buy=False)
    method, path, body, headers, orders = batch_request(trader, random.Random(1), 3)
    assert (method, path, orders) == ("POST", "/api/v1/orders", 3)
    assert body is not None
    sent = orjson.loads(body)
    assert {o["side"] for o in sent} == {"Ask"}
    assert len({o["clientId"] for o in sent}) == 3  # equal orders never sign alike
    quoted, _raw = signing_strings(
        "orderExecute", sent, headers["X-Timestamp"], headers["X-Window"]
    )
    signature = base64.b64decode(headers["X-Signature"])
    trader.key.public_key().verify(signature, quoted)  # raises if it does not match


def test_a_binance_order_is_signed_with_the_hmac_key() -> None:
    trader = _trader(buy=True)
    method, target, body, headers, orders = binance_request(trader, random.Random(1))
    assert (method, body, orders, headers) == ("POST", None, 1, {"X-MBX-APIKEY": "K" * 64})
    path, _, query = target.partition("?")
    signed, _, signature = query.rpartition("&signature=")
    assert path == "/api/v3/order"
    assert "symbol=TATAINR&side=BUY&type=LIMIT&" in signed
    assert signature == hmac_signature("s" * 64, signed)


def test_profile_counts_own_and_total_time_per_function() -> None:
    collapsed = (
        "main (app/main.py);handle (aiohttp/web.py);verify (gateway_svc/auth.py) 6\n"
        "main (app/main.py);handle (aiohttp/web.py) 3\n"
        "main (app/main.py) 1\n"
    )
    profile = top_functions(collapsed)
    assert profile["samples"] == 10
    assert profile["own_percent"][0] == ["verify (gateway_svc/auth.py)", 60.0]
    total = dict(map(tuple, profile["total_percent"]))
    assert total["main (app/main.py)"] == 100.0
    assert total["handle (aiohttp/web.py)"] == 90.0
    packages = dict(map(tuple, profile["own_percent_by_package"]))
    assert packages == {"gateway_svc": 60.0, "aiohttp": 30.0, "app": 10.0}
    assert top_functions("") == {"samples": 0}


def test_the_cpu_budget_divides_each_process_time_by_the_orders() -> None:
    budget = cpu_budget({"bench": 1.0, "gateway": 3.0, "engine": 1.0}, 5_000, 5_000)
    assert budget["cpu_ms_per_order"] == {"bench": 0.2, "gateway": 0.6, "engine": 0.2}
    assert budget["cpu_ms_per_order_total"] == 1.0
    assert budget["cores_needed_at_target"] == 5.0  # 5,000 orders/s at 1 ms each
    cores = budget["orders_per_second_at_full_cpu"] // 1000
    assert budget["orders_per_second_at_full_cpu"] == cores * 1000 >= 1000
    assert cpu_budget({"gateway": 1.0}, 0, 5_000) == {}  # no order, no budget


async def test_every_mode_runs_end_to_end(database_url: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.orders", "--json",
        "--clients", "4", "--users", "4", "--batch-clients", "2", "--batch-size", "10",
        "--seconds", "1", "--database-url", database_url,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(240):
        stdout, _ = await process.communicate()
    assert process.returncode == 0, f"bench_orders exited with {process.returncode}"
    r: dict[str, Any] = orjson.loads(stdout)  # the services' logs go to stderr: pipeable
    assert r["users"] == 4
    assert r["profile"] is None
    assert set(r["modes"]) == {"single", "binance", "batch", "depth", "trades"}
    for name, m in r["modes"].items():
        assert m["requests"] > 0, name
        assert m["statuses"] == {"200": m["requests"]}, (name, m["first_error"])
        assert 0 < m["p50_ms"] <= m["p99_ms"] <= m["p99_9_ms"] <= m["max_ms"], name
        processes = {"bench", "engine", "ledger", "gateway", "redis", "publisher", "stream"}
        assert set(m["cpu_seconds"]) >= processes
        assert m["cpu_seconds_other_processes"] >= 0
    for name in ORDER_MODES:
        m = r["modes"][name]
        assert m["orders"] + m["rejected_orders"] == m["requests"] * (10 if name == "batch" else 1)
        assert m["orders"] > 0, name
        assert m["ledger_catch_up_seconds"] >= 0
        assert set(m["cpu_ms_per_order"]) == set(m["cpu_seconds"])
        total = sum(m["cpu_ms_per_order"].values())
        assert abs(m["cpu_ms_per_order_total"] - total) < 0.01 * len(m["cpu_ms_per_order"])
        assert m["cpu_ms_per_order_total"] > 0
    assert r["modes"]["batch"]["engine_seq"] > r["modes"]["single"]["engine_seq"]
    assert r["modes"]["batch"]["clients"] == 2


async def test_gateways_share_one_port(database_url: str) -> None:
    # Without SO_REUSEPORT the second gateway could not bind, and the run would not start.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.orders", "--json", "--modes", "single",
        "--gateways", "2", "--clients", "8", "--users", "4", "--seconds", "1",
        "--database-url", database_url,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(240):
        stdout, _ = await process.communicate()
    assert process.returncode == 0, f"bench_orders exited with {process.returncode}"
    r: dict[str, Any] = orjson.loads(stdout)
    assert r["gateways"] == 2
    single = r["modes"]["single"]
    assert single["orders"] > 0
    assert single["statuses"] == {"200": single["requests"]}
    replicas = single["gateway_replicas_cpu_seconds"]
    assert len(replicas) == 2
    assert abs(single["cpu_seconds"]["gateway"] - sum(replicas)) < 0.02
    assert not any(name.startswith("gateway-") for name in single["cpu_seconds"])


async def test_a_run_over_https_and_mutual_tls(database_url: str) -> None:
    # The clients speak TLS to the gateway and the bench's own channels present the run's
    # certificate to the engine and the ledger: plaintext anywhere, and nothing is accepted.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.orders", "--json", "--modes", "single", "--tls",
        "--clients", "4", "--users", "4", "--seconds", "1", "--database-url", database_url,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(240):
        stdout, _ = await process.communicate()
    assert process.returncode == 0, f"bench_orders exited with {process.returncode}"
    r: dict[str, Any] = orjson.loads(stdout)
    assert r["tls"] is True
    single = r["modes"]["single"]
    assert single["orders"] > 0
    assert single["statuses"] == {"200": single["requests"]}, single["first_error"]
    assert single["ledger_catch_up_seconds"] >= 0
