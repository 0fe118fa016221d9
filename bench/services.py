"""How the benchmarks start the services: each as `python -m <package>` on loopback, with
settings for measuring (warnings only in the logs, the gateway's limits out of the way).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import asyncpg

from launcher.health import HttpProbe
from launcher.ports import free_port
from launcher.postgres import LocalPostgres
from launcher.supervisor import ServiceSpec

LOCALHOST = "127.0.0.1"
SECRET = "bench-token-secret-bench-token-secret"
# What tells whether PostgreSQL waited for the disk, how much memory it had, and whether it
# loaded TimescaleDB (the ledger's Timescale track).
REPORTED_SETTINGS = (
    "shared_preload_libraries",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_level",
    "shared_buffers",
    "wal_buffers",
    "max_wal_size",
    "checkpoint_timeout",
)


def engine_spec(data_dir: Path, port: int) -> ServiceSpec:
    return ServiceSpec(
        name="engine",
        argv=[sys.executable, "-m", "engine_svc"],
        env={
            "ENGINE_GRPC_PORT": str(port),
            "ENGINE_HOST": LOCALHOST,
            "ENGINE_DATA_DIR": str(data_dir),
            "LOG_LEVEL": "WARNING",
        },
        health_address=f"{LOCALHOST}:{port}",
    )


def ledger_spec(
    database_url: str, engine_address: str, port: int, *, ingest: bool, name: str = "ledger"
) -> ServiceSpec:
    """The ledger as `python -m ledger_svc`; with `ingest` False it only serves queries."""
    return ServiceSpec(
        name=name,
        argv=[sys.executable, "-m", "ledger_svc"],
        env={
            "DATABASE_URL": database_url,
            "ENGINE_ADDRESS": engine_address,
            "LEDGER_GRPC_PORT": str(port),
            "LEDGER_HOST": LOCALHOST,
            "LEDGER_INGEST": "true" if ingest else "false",
            "LOG_LEVEL": "WARNING",
        },
        health_address=f"{LOCALHOST}:{port}",
    )


# The local server a benchmark runs its ledger on: `--backend` of bench.ingest and
# ledger_svc.bench_queries (timescale: preloading the extension `make deps` provides).
BACKENDS = ("plain", "timescale")


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """`--backend`, the local server a benchmark starts (unless `--database-url`)."""
    parser.add_argument(
        "--backend", choices=BACKENDS, default="plain",
        help="the local server: plain PostgreSQL, or preloading TimescaleDB (`make deps`)",
    )  # fmt: skip


def postgres_specs(
    database_url: str | None, work_dir: Path, settings: dict[str, str], backend: str = "plain"
) -> tuple[list[ServiceSpec], str]:
    """A local server of `backend` in `work_dir` with `settings`, unless `database_url`
    names a database."""
    if database_url is not None:
        return [], database_url
    server = LocalPostgres(
        work_dir / "postgres",
        free_port(),
        database="bench",
        settings=settings,
        timescale=backend == "timescale",
    )
    return [server.spec()], server.url


async def server_settings(database_url: str) -> dict[str, str]:
    """REPORTED_SETTINGS as the server has them, so the result says what was measured."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT name, current_setting(name) FROM unnest($1::text[]) AS name",
            list(REPORTED_SETTINGS),
        )
    finally:
        await conn.close()
    return {row[0]: row[1] for row in rows}


def gateway_spec(
    port: int,
    engine_address: str,
    ledger_address: str,
    redis_url: str,
    *,
    order_rate: int = 1_000_000,
    market_rate: int = 1_000_000,
    name: str = "gateway",
    reuse_port: bool = False,
) -> ServiceSpec:
    """The gateway, by default with limits out of the way: the benchmark measures, it does
    not abuse (bench.flood passes the real limits). With `reuse_port`, several such
    processes share `port`."""
    return ServiceSpec(
        name=name,
        argv=[sys.executable, "-m", "gateway_svc"],
        env={
            "GATEWAY_HOST": LOCALHOST,
            "GATEWAY_PORT": str(port),
            "GATEWAY_REUSE_PORT": "true" if reuse_port else "false",
            "ENGINE_ADDRESS": engine_address,
            "LEDGER_ADDRESS": ledger_address,
            "REDIS_URL": redis_url,
            "GATEWAY_TOKEN_SECRET": SECRET,
            "GATEWAY_FAUCET": "true",
            "GATEWAY_FAUCET_CAP": "1000000000",
            "GATEWAY_ORDER_RATE": str(order_rate),
            "GATEWAY_MARKET_RATE": str(market_rate),
            # The Binance face: HMAC keys on, its weight and order budgets as high as ours.
            "API_SECRET_SEAL_KEY": SECRET,
            "BINANCE_WEIGHT_1M": str(market_rate * 60),
            "BINANCE_ORDERS_10S": str(order_rate * 10),
            "LOG_LEVEL": "WARNING",
        },
        ready_probe=HttpProbe(f"http://{LOCALHOST}:{port}/health"),
    )


def market_data_specs(
    engine_address: str, ledger_address: str, redis_url: str
) -> list[ServiceSpec]:
    """The publisher (engine events to Redis) and stream_svc (Redis to subscribers): they
    take their share of the cores for every order even when nobody watches."""
    common = {"ENGINE_ADDRESS": engine_address, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}
    publisher_port, stream_port = free_port(), free_port()
    return [
        ServiceSpec(
            name="publisher",
            argv=[sys.executable, "-m", "stream_svc.publisher"],
            env={
                **common,
                "LEDGER_ADDRESS": ledger_address,
                "STREAM_PUBLISHER_HOST": LOCALHOST,
                "STREAM_PUBLISHER_PORT": str(publisher_port),
            },
            health_address=f"{LOCALHOST}:{publisher_port}",
        ),
        ServiceSpec(
            name="stream",
            argv=[sys.executable, "-m", "stream_svc"],
            env={**common, "STREAM_HOST": LOCALHOST, "STREAM_GRPC_PORT": str(stream_port)},
            health_address=f"{LOCALHOST}:{stream_port}",
        ),
    ]
