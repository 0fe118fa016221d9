"""The publisher's mirror against a real engine: started mid-session, fed the events that
follow in batches cut anywhere (even inside a command), its books, balances and the book a
consumer builds from its diffs must equal the engine's, and its candles the ledger's."""

from __future__ import annotations

import random
from decimal import Decimal

import grpc
import pytest

from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceStub
from exchange.stream.v1 import stream_pb2 as spb
from ledger_svc.server import LedgerRuntime
from stream_svc.mirror import Mirror
from stream_svc.publisher import bootstrap
from stream_svc.redis_keys import market_channel, user_channel
from tests.engine.conftest import RunningEngine
from tests.ledger.events import all_events
from tests.ledger.trading import MARKETS, Trader
from tradekit.book import Book
from tradekit.money import format_units


def _levels(levels: object) -> list[tuple[str, str]]:
    return [(lv.price, lv.quantity) for lv in levels]  # type: ignore[attr-defined]


def _nonzero(balance: tuple[str, str]) -> bool:
    return any(Decimal(x) for x in balance)


def _mirror_levels(mirror: Mirror, symbol: str, side: int) -> list[tuple[str, str]]:
    m = mirror.markets[symbol]
    items = list(m.levels[side].items())
    if side == 1:
        items.reverse()
    return [(m.scales.price(p), m.scales.qty(q)) for p, q in items]


@pytest.mark.parametrize("seed", [1, 2])
async def test_mirror_follows_the_engine(
    engine: RunningEngine, ledger_address: tuple[str, LedgerRuntime], seed: int
) -> None:
    address, runtime = ledger_address
    trader = Trader(engine.stub, seed=seed)
    await trader.fund()
    await trader.run(250)
    async with grpc.aio.insecure_channel(address) as channel:
        ledger = LedgerServiceStub(channel)
        mirror = await bootstrap(engine.stub, ledger, ledger_wait_s=20)
        start_seq = mirror.seq
        books: dict[str, Book] = {}
        for symbol, m in mirror.markets.items():
            depth = await engine.stub.GetDepth(epb.GetDepthRequest(market=symbol))
            assert depth.seq == m.applied  # nothing ran in between
            books[symbol] = Book.from_levels(symbol, list(depth.bids), list(depth.asks), depth.seq)

        await trader.run(500)
        last = engine.runtime.engine.seq
        events = (await all_events(engine.stub, last))[start_seq:]
        assert events
        assert events[0].seq == start_seq + 1

        rng = random.Random(seed)
        updates: dict[str, list[spb.MarketData]] = {}
        i = 0
        while i < len(events):
            size = rng.randint(1, 40)
            out = mirror.apply(events[i : i + size])
            for name, items in out.channels.items():
                updates.setdefault(name, []).extend(items)
            i += size

        for symbol in mirror.markets:
            depth = await engine.stub.GetDepth(epb.GetDepthRequest(market=symbol))
            assert _mirror_levels(mirror, symbol, 1) == _levels(depth.bids)
            assert _mirror_levels(mirror, symbol, 2) == _levels(depth.asks)
            # A consumer's book: the snapshot plus every diff published after it.
            book = books[symbol]
            diffs = [
                d.depth for d in updates.get(market_channel(symbol), []) if d.HasField("depth")
            ]
            for diff in diffs:
                book.apply(diff)  # raises Gap if the id chain broke
            snap = book.snapshot()
            assert _levels(snap.bids) == _levels(depth.bids)
            assert _levels(snap.asks) == _levels(depth.asks)

        exported = await engine.stub.ExportBalances(epb.ExportBalancesRequest())
        theirs = {(b.user_id, b.asset): (b.available, b.locked) for b in exported.balances}
        mine = {
            (user, asset): (
                format_units(bal[0], mirror.assets[asset]),
                format_units(bal[1], mirror.assets[asset]),
            )
            for (user, asset), bal in mirror.balances.items()
        }
        assert {k: v for k, v in mine.items() if _nonzero(v)} == {
            k: v for k, v in theirs.items() if _nonzero(v)
        }

        # The last balance update each user got equals the engine's balance.
        for user in (1, 2, 3, 4, 5):
            latest: dict[str, spb.BalanceUpdate] = {}
            for item in updates.get(user_channel(user), []):
                if item.HasField("balance_update"):
                    latest[item.balance_update.asset] = item.balance_update
            for asset, update in latest.items():
                assert (update.available, update.locked) == theirs[(user, asset)]

        # Candles: the ledger, once caught up, agrees with the last kline published.
        await runtime.ingest.wait_for(last)  # type: ignore[union-attr]
        for shape in MARKETS:
            klines = [
                d.kline
                for d in updates.get(market_channel(shape.symbol), [])
                if d.HasField("kline") and d.kline.interval_s == 60
            ]
            if not klines:
                continue
            reply = await ledger.GetKlines(
                lpb.GetKlinesRequest(market=shape.symbol, interval=60, limit=1)  # type: ignore[arg-type]
            )
            theirs_k = reply.klines[-1]
            mine_k = klines[-1]
            assert (mine_k.open_time_us, mine_k.open, mine_k.high, mine_k.low, mine_k.close,
                    mine_k.volume, mine_k.trades) == (
                theirs_k.open_time_us, theirs_k.open, theirs_k.high, theirs_k.low,
                theirs_k.close, theirs_k.volume, theirs_k.trades,
            )  # fmt: skip
