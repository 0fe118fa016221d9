"""Read latency of the ledger's market-history queries over a month of trades.

`python -m ledger_svc.bench_queries --trades 1000000 --json` runs PostgreSQL (UNSAFE_FAST:
this measures reads, not durability) in a temporary directory, migrates it, and seeds it
with SQL alone: the assets and markets of engine_svc/markets.toml, `--trades` trades spread
evenly over the markets of SHAPES and over `--days` days ending now (so the 24-hour ticker
has about trades / days of them), and the candles of every interval computed from those
trades with one INSERT ... SELECT ... GROUP BY per interval, as ingest would have stored
them (ledger_svc.projection: bucket_start, weeks from Monday). Then VACUUM ANALYZE, as
autovacuum would have done on a live database.

It then starts the ledger with LEDGER_INGEST=false (queries only) and calls it over gRPC
like a client, one call at a time, `--calls` times per query after WARMUP_CALLS: GetKlines
(1m and 1h, the latest 500), GetTicker, GetTickers and GetTrades (the latest 100). It
reports p50 and p99 latency per query and how many rows the last reply held.
`--database-url` seeds an existing (empty) database instead of starting PostgreSQL; on a
server that preloads TimescaleDB the candles are its continuous aggregates, refreshed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import tomllib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import orjson

from bench.services import (
    LOCALHOST,
    add_backend_option,
    ledger_spec,
    postgres_specs,
    server_settings,
)
from exchange.common.v1 import common_pb2 as cpb
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.ledger.v1 import ledger_pb2_grpc as lpb_grpc
from launcher.ports import free_port
from launcher.postgres import UNSAFE_FAST
from launcher.supervisor import Supervisor
from ledger_svc.migrate import migrate, timescale_in_use
from tradekit.candles import INTERVALS_S, WEEK_OFFSET_US
from tradekit.markets import MarketSpec
from tradekit.money import parse_units

DAY_US = 86_400_000_000
WARMUP_CALLS = 20
# The markets that trade, each with a mid price and a typical trade size (decimal strings).
SHAPES = {
    "TATA_INR": ("1000", "10"),
    "BTC_USDT": ("60000", "0.05"),
    "ETH_USDT": ("3000", "0.5"),
    "SOL_USDC": ("150", "5"),
}
ENGINE_ADDRESS = f"{LOCALHOST}:9"  # never called: the ledger neither ingests nor reconciles


# -- seeding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedMarket:
    """One traded market in units: prices wander SWING_SHARE around `mid` in `tick`s."""

    symbol: str
    mid: int
    tick: int
    step: int
    size_steps: int  # the mean trade size, in steps
    base_scale: int  # 10 ** base decimals: price x quantity / base_scale = quote units
    maker_fee_bps: int
    taker_fee_bps: int

    @property
    def swing_ticks(self) -> int:
        return max(1, self.mid // 50 // self.tick)  # +-2%


# The engine's markets file, read as data: this bench measures the ledger alone.
MARKETS_FILE = Path(__file__).resolve().parent.parent / "engine_svc" / "markets.toml"


def catalog() -> tuple[list[tuple[str, int]], list[MarketSpec]]:
    """The assets (symbol, decimals) and markets that the engine lists at first start."""
    data = tomllib.loads(MARKETS_FILE.read_text())
    assets = [(a["symbol"], a["decimals"]) for a in data["assets"]]
    return assets, [MarketSpec(**m) for m in data["markets"]]


def seed_markets(assets: list[tuple[str, int]], markets: list[MarketSpec]) -> list[SeedMarket]:
    decimals = dict(assets)
    seeded = []
    for m in markets:
        if m.symbol not in SHAPES:
            continue
        mid, size = SHAPES[m.symbol]
        base, quote = decimals[m.base], decimals[m.quote]
        step = parse_units(m.step_size, base)
        seeded.append(
            SeedMarket(
                symbol=m.symbol,
                mid=parse_units(mid, quote),
                tick=parse_units(m.tick_size, quote),
                step=step,
                size_steps=max(1, parse_units(size, base) // step),
                base_scale=10**base,
                maker_fee_bps=m.maker_fee_bps,
                taker_fee_bps=m.taker_fee_bps,
            )
        )
    return seeded


async def _insert_catalog(
    conn: asyncpg.Connection[asyncpg.Record],
    assets: list[tuple[str, int]],
    markets: list[MarketSpec],
) -> None:
    await conn.executemany("INSERT INTO assets (symbol, decimals, seq) VALUES ($1, $2, 0)", assets)
    await conn.executemany(
        """INSERT INTO markets (symbol, base, quote, tick_size, step_size, min_quantity,
               min_notional, max_quantity, max_price, maker_fee_bps, taker_fee_bps, status, seq)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0)""",
        [
            (m.symbol, m.base, m.quote, m.tick_size, m.step_size, m.min_quantity,
             m.min_notional, m.max_quantity, m.max_price, m.maker_fee_bps, m.taker_fee_bps,
             cpb.MARKET_STATUS_OPEN)
            for m in markets
        ],
    )  # fmt: skip


async def _insert_trades(
    conn: asyncpg.Connection[asyncpg.Record], markets: list[SeedMarket], trades: int, days: float
) -> None:
    """`trades` trades, round robin over `markets`, evenly spaced over `days` up to now.

    Prices follow a slow sine (a few swings a month) plus noise of a few ticks, so candles
    have real highs and lows; sizes are uniform around each market's typical size.
    """
    await conn.execute(
        """CREATE TEMP TABLE seed_market (
               k int, symbol text, mid bigint, tick bigint, step bigint, size_steps bigint,
               swing bigint, base_scale bigint, maker_bps int, taker_bps int)"""
    )
    await conn.executemany(
        "INSERT INTO seed_market VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        [
            (k, m.symbol, m.mid, m.tick, m.step, m.size_steps, m.swing_ticks, m.base_scale,
             m.maker_fee_bps, m.taker_fee_bps)
            for k, m in enumerate(markets)
        ],
    )  # fmt: skip
    now_us = time.time_ns() // 1000
    spacing_us = max(1, int(days * DAY_US) // trades)
    await conn.execute("SELECT setseed(0.42)")  # the same prices and sizes on every run
    await conn.execute(
        """INSERT INTO trades (trade_id, market, price, quantity, quote_quantity, taker_side,
               maker_order_id, maker_user_id, taker_order_id, taker_user_id, maker_fee,
               taker_fee, seq, ts_us)
           SELECT i, m.symbol, p.price, q.qty, p.price * q.qty / m.base_scale, 1 + i % 2,
                  2 * i, 1 + i * 7919 % 1000, 2 * i + 1, 1 + i * 104729 % 1000,
                  p.price * q.qty / m.base_scale * m.maker_bps / 10000,
                  p.price * q.qty / m.base_scale * m.taker_bps / 10000,
                  3 * i, $3 - ($1 - i) * $4
           FROM generate_series(1, $1::bigint) AS i
           JOIN seed_market m ON m.k = i % $2
           CROSS JOIN LATERAL (SELECT m.mid + m.tick * (
               round(m.swing * sin(i::float8 * 25 / $1)) + floor(random() * 8))::bigint
               AS price) p
           CROSS JOIN LATERAL (SELECT m.step * (1 + floor(random() * 2 * m.size_steps))::bigint
               AS qty) q""",
        trades,
        len(markets),
        now_us,
        spacing_us,
    )


async def _insert_candles(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Every interval's candles from the trades, as ingest aggregates them."""
    for interval in INTERVALS_S:
        width = interval * 1_000_000
        offset = WEEK_OFFSET_US if interval == 604_800 else 0
        await conn.execute(
            """INSERT INTO candles (market, interval_s, open_time_us, open, high, low, close,
                   volume, quote_volume, trades, first_trade_id, last_trade_id)
               SELECT market, $1, open_time, (array_agg(price ORDER BY trade_id))[1],
                      max(price), min(price), (array_agg(price ORDER BY trade_id DESC))[1],
                      sum(quantity), sum(quote_quantity), count(*), min(trade_id),
                      max(trade_id)
               FROM (SELECT market, price, quantity, quote_quantity, trade_id,
                            (ts_us - $2) / $3 * $3 + $2 AS open_time
                     FROM trades) t
               GROUP BY market, open_time""",
            interval,
            offset,
            width,
        )


async def _refresh_aggregates(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """On the Timescale track candles are continuous aggregates: materialized, as their
    refresh policies would have done them over the month."""
    views = await conn.fetch(
        "SELECT view_name FROM timescaledb_information.continuous_aggregates ORDER BY 1"
    )
    for (view,) in views:
        await conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
        await conn.execute(f"VACUUM ANALYZE {view}")


async def seed(database_url: str, trades: int, days: float) -> dict[str, Any]:
    """Migrate and fill the database; how long it took and what it holds."""
    started = time.perf_counter()
    assets, markets = catalog()
    traded = seed_markets(assets, markets)
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        await _insert_catalog(conn, assets, markets)
        await _insert_trades(conn, traded, trades, days)
        if await timescale_in_use(conn):
            await _refresh_aggregates(conn)
        else:
            await _insert_candles(conn)
            await conn.execute("VACUUM ANALYZE candles")
        await conn.execute("VACUUM ANALYZE trades")
        candles = await conn.fetchval("SELECT count(*) FROM candles")
    finally:
        await conn.close()
    return {
        "seed_seconds": round(time.perf_counter() - started, 2),
        "markets": [m.symbol for m in traded],
        "candles": candles,
    }


# -- the calls ------------------------------------------------------------------------------


Call = Callable[[], Awaitable[int]]  # one request; returns how many rows the reply held


def query_calls(stub: lpb_grpc.LedgerServiceAsyncStub, markets: list[str]) -> dict[str, Call]:
    """The measured queries, by name. Ticker and trades rotate over the markets."""
    rotation = {"ticker": 0, "trades": 0}

    def next_market(name: str) -> str:
        rotation[name] += 1
        return markets[rotation[name] % len(markets)]

    async def klines(interval: lpb.KlineInterval.ValueType) -> int:
        request = lpb.GetKlinesRequest(market=markets[0], interval=interval, limit=500)
        return len((await stub.GetKlines(request)).klines)

    async def ticker() -> int:
        reply = await stub.GetTicker(lpb.GetTickerRequest(market=next_market("ticker")))
        return reply.trades  # the 24-hour window's trades

    async def tickers() -> int:
        return len((await stub.GetTickers(lpb.GetTickersRequest())).tickers)

    async def trades() -> int:
        request = lpb.GetTradesRequest(market=next_market("trades"), limit=100)
        return len((await stub.GetTrades(request)).trades)

    return {
        "klines_1m_500": lambda: klines(lpb.KLINE_INTERVAL_1M),
        "klines_1h_500": lambda: klines(lpb.KLINE_INTERVAL_1H),
        "ticker": ticker,
        "tickers": tickers,
        "trades_100": trades,
    }


async def measure(call: Call, calls: int) -> dict[str, float]:
    """p50 and p99 of `calls` sequential calls, after a warm-up; rows of the last reply."""
    for _ in range(WARMUP_CALLS):
        await call()
    latencies_ms = []
    rows = 0
    for _ in range(calls):
        started = time.perf_counter_ns()
        rows = await call()
        latencies_ms.append((time.perf_counter_ns() - started) / 1e6)
    ordered = sorted(latencies_ms)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
        "rows": rows,
    }


# -- the run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    trades: int
    days: float = 30.0
    calls: int = 300
    database_url: str | None = None
    backend: str = "plain"


async def run(options: Options) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-queries-") as tmp:
        stores, database_url = postgres_specs(
            options.database_url, Path(tmp), UNSAFE_FAST, options.backend
        )
        async with Supervisor(stores, prefix_output=False):
            seeded = await seed(database_url, options.trades, options.days)
            port = free_port()
            ledger = ledger_spec(database_url, ENGINE_ADDRESS, port, ingest=False)
            async with (
                Supervisor([ledger], prefix_output=False),
                grpc.aio.insecure_channel(f"{LOCALHOST}:{port}") as channel,
            ):
                calls = query_calls(lpb_grpc.LedgerServiceStub(channel), seeded["markets"])
                queries = {name: await measure(call, options.calls) for name, call in calls.items()}
            settings = await server_settings(database_url)
    return {
        "trades": options.trades,
        "days": options.days,
        "calls": options.calls,
        **seeded,
        "postgres_settings": settings,
        "queries": queries,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ledger_svc.bench_queries", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--calls", type=int, default=300, help="measured calls per query")
    parser.add_argument("--database-url", help="an empty database to use instead of a local one")
    add_backend_option(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.trades < len(SHAPES) or args.calls <= 0 or args.days <= 0:
        parser.error(f"--trades must be at least {len(SHAPES)}; --calls and --days positive")
    options = Options(args.trades, args.days, args.calls, args.database_url, args.backend)
    result = asyncio.run(run(options))
    if args.json:
        print(orjson.dumps(result).decode())
        return 0
    print(f"{result['trades']:,} trades, {result['candles']:,} candles, seeded in "
          f"{result['seed_seconds']} s")  # fmt: skip
    for name, q in result["queries"].items():
        print(f"{name:14} p50 {q['p50_ms']:>7} ms  p99 {q['p99_ms']:>7} ms  ({q['rows']} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
