"""The projection alone (no database): engine events in, ledger rows out.

A random trading session runs on a real engine; its event stream is projected in batches
of random sizes, and what the ledger would store must agree with the engine exactly.
"""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from engine_svc.core.types import OrderId
from exchange.common.v1 import common_pb2 as cpb
from ledger_svc.projection import (
    ORDER_COLUMNS,
    TRANSFERS_PER_EVENT,
    Batch,
    Bucket,
    Catalog,
    GapError,
    project,
)
from tests.engine.conftest import RunningEngine
from tests.ledger.events import all_events, movements
from tests.ledger.trading import Trader
from tradekit.candles import INTERVALS_S, bucket_start


def project_in_chunks(events: list[cpb.EngineEvent], seed: int) -> list[Batch]:
    rng = random.Random(seed)
    catalog = Catalog()
    batches, start = [], 0
    while start < len(events):
        size = rng.choice((1, 2, 7, 50, 400))
        chunk = events[start : start + size]
        batches.append(project(chunk, catalog, chunk[0].seq))
        start += size
    return batches


async def test_projected_balances_and_entries_match_the_engine(engine: RunningEngine) -> None:
    trader = Trader(engine.stub, seed=7)
    await trader.fund()
    await trader.run(800)
    core = engine.runtime.engine
    events = await all_events(engine.stub, core.seq)
    assert len(events) == core.seq
    batches = project_in_chunks(events, seed=3)

    balances: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    per_transaction: dict[tuple[int, str], int] = defaultdict(int)
    bucket_sums: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    transfer_ids: list[int] = []
    trades = 0
    for batch in batches:
        for key, (available, locked) in batch.balances.items():
            balances[key][0] += available
            balances[key][1] += locked
        for movement in (m for transfer in batch.transfers for m in movements(transfer)):
            tid, amount, debit_user, credit_user, *_, debit_bucket, credit_bucket, _, asset = (
                movement
            )
            assert amount > 0
            transfer_ids.append(tid)
            seq = tid // TRANSFERS_PER_EVENT
            for user, bucket, signed in (
                (debit_user, debit_bucket, -amount),
                (credit_user, credit_bucket, amount),
            ):
                per_transaction[(seq, asset)] += signed
                if bucket != Bucket.EXTERNAL:
                    bucket_sums[(user, asset)][bucket - 1] += signed
        trades += len(batch.trades)
        # A trade is two rows, its base and quote legs; its fees ride on the quote leg.
        assert sum(1 for t in batch.transfers if t[5]) == 2 * len(batch.trades)

    assert trades == core.next_trade_id - 1 > 50  # the session really traded
    assert all(total == 0 for total in per_transaction.values())  # double entry
    # Ids come from the seq: ascending across batches, and each event's transfers are
    # numbered from seq * TRANSFERS_PER_EVENT without a hole.
    assert transfer_ids == sorted(set(transfer_ids))
    made = set(transfer_ids)
    assert all(tid % TRANSFERS_PER_EVENT == 0 or tid - 1 in made for tid in transfer_ids)
    assert bucket_sums == balances  # balances are the entries' projection
    expected = {
        (user, asset): [b.available, b.locked]
        for user, asset, b in core.accounts.items()
        if b.available or b.locked
    }
    assert {k: v for k, v in balances.items() if v != [0, 0]} == expected


async def test_orders_and_candles_follow_the_fills(engine: RunningEngine) -> None:
    trader = Trader(engine.stub, seed=11)
    await trader.fund()
    await trader.run(600)
    core = engine.runtime.engine
    events = await all_events(engine.stub, core.seq)
    # One batch: every order's life and every candle is complete in it.
    batch = project(events, Catalog(), 1)

    col = {name: i for i, name in enumerate(ORDER_COLUMNS)}
    terminal = {cpb.ORDER_STATUS_FILLED, cpb.ORDER_STATUS_CANCELLED, cpb.ORDER_STATUS_EXPIRED}
    resting = 0
    for order_id, row in batch.new_orders.items():
        live = core.orders.get(OrderId(order_id))
        if live is None:
            assert row[col["status"]] in terminal
            assert row[col["locked"]] == 0, f"order {order_id} closed with funds locked"
            continue
        resting += 1
        assert row[col["status"]] in (cpb.ORDER_STATUS_NEW, cpb.ORDER_STATUS_PARTIALLY_FILLED)
        assert (
            row[col["executed_quantity"]],
            row[col["executed_quote_quantity"]],
            row[col["fees_paid"]],
            row[col["locked"]],
        ) == (live.filled, live.filled_quote, live.fees, live.locked)
    assert resting == len(core.orders) > 0

    # Candles equal a brute-force aggregation of the trades.
    for interval in INTERVALS_S:
        buckets: dict[tuple[str, int], list[tuple[int, int, int, int]]] = defaultdict(list)
        for t in batch.trades:
            trade_id, market, price, qty, notional, ts = t[0], t[1], t[2], t[3], t[4], t[13]
            buckets[(market, bucket_start(ts, interval))].append((trade_id, price, qty, notional))
        for (market, start), rows in buckets.items():
            candle = batch.candles[(market, interval, start)]
            prices = [p for _, p, _, _ in rows]
            assert (candle.open, candle.close) == (prices[0], prices[-1])
            assert (candle.high, candle.low) == (max(prices), min(prices))
            assert candle.volume == sum(q for _, _, q, _ in rows)
            assert candle.quote_volume == sum(n for _, _, _, n in rows)
            assert candle.trades == len(rows)


def test_weeks_start_on_monday() -> None:
    monday = 1_763_942_400_000_000  # 2025-11-24 00:00 UTC, a Monday
    assert bucket_start(monday, 604_800) == monday
    assert bucket_start(monday + 6 * 86_400_000_000, 604_800) == monday
    assert bucket_start(monday - 1, 604_800) == monday - 7 * 86_400_000_000
    assert bucket_start(monday + 61_000_000, 60) == monday + 60_000_000


def test_a_gap_in_the_stream_is_refused() -> None:
    halt = cpb.MarketStatusChanged(market="TATA_INR", status=cpb.MARKET_STATUS_HALTED)
    events = [
        cpb.EngineEvent(seq=5, ts_us=1, market_status_changed=halt),
        cpb.EngineEvent(seq=7, ts_us=2, market_status_changed=halt),
    ]
    with pytest.raises(GapError):
        project(events, Catalog(), 5)
    with pytest.raises(GapError):
        project(events[:1], Catalog(), 4)
