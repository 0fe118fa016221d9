"""GetKlines reads the newest candles through a window it widens until it holds enough
(ledger_svc.queries.get_klines). On histories sparse and dense, with any limit and start,
its answer must be the newest `limit` candles of [start, end), as one ordered read of the
whole range gives them, on both backends."""

from __future__ import annotations

import asyncpg
import pytest

from exchange.ledger.v1 import ledger_pb2 as lpb
from ledger_svc.bench_queries import seed
from ledger_svc.queries import DAY_US, Directory, get_klines
from tests.conftest import BOTH_BACKENDS

WHOLE_RANGE = """SELECT open_time_us FROM candles
                 WHERE market = $1 AND interval_s = $2 AND open_time_us >= $3
                       AND open_time_us < $4
                 ORDER BY open_time_us DESC LIMIT $5"""


@BOTH_BACKENDS
@pytest.mark.parametrize("trades", [1_200, 20_000])  # per market: a trade every ~2 h, ~9 min
async def test_the_widened_window_answers_as_the_whole_range(
    database_url: str, trades: int
) -> None:
    await seed(database_url, trades, days=30)
    conn = await asyncpg.connect(database_url)
    try:
        directory = await Directory.load(conn)
        now_us = await conn.fetchval("SELECT max(ts_us) FROM trades") + 1
        market = "BTC_USDT"
        widened = 0
        for interval in (60, 3600, 604800):
            for limit, start in ((500, 0), (1000, 0), (7, 0), (1, 0), (50, now_us - 3 * DAY_US)):
                request = lpb.GetKlinesRequest(
                    market=market, interval=interval, start_time_us=start, limit=limit,  # type: ignore[arg-type]
                )  # fmt: skip
                got = [
                    k.open_time_us
                    for k in (await get_klines(conn, directory, request, now_us)).klines
                ]
                whole = await conn.fetch(WHOLE_RANGE, market, interval, start, now_us + 1, limit)
                assert got == [r[0] for r in reversed(whole)], (interval, limit, start)
                assert got, (interval, limit, start)
                # The newest `limit` did not all lie in the last `limit` buckets: it widened.
                widened += got[0] < now_us - limit * interval * 1_000_000
        assert widened
    finally:
        await conn.close()
