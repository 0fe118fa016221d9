"""LedgerService over gRPC, in-process on an ephemeral port, fed by a real engine."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import TYPE_CHECKING

import grpc
import pytest

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.ledger.v1 import ledger_pb2_grpc
from ledger_svc.projection import Catalog, project
from ledger_svc.server import LedgerRuntime, create_server
from ledger_svc.settings import LedgerSettings
from tests.conftest import BOTH_BACKENDS
from tests.engine.conftest import RunningEngine
from tests.ledger.events import all_events, entries
from tests.ledger.trading import Trader
from tests.monitoring.scrape import scrape
from tradekit.money import format_units

if TYPE_CHECKING:
    from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceAsyncStub


def ledger_settings(database_url: str, engine_address: str) -> LedgerSettings:
    return LedgerSettings(
        host="127.0.0.1",
        port=0,
        database_url=database_url,
        engine_address=engine_address,
        ingest=True,
        max_batch_events=1000,
        db_connect_timeout=10.0,
        db_pool_size=4,
        trades_compress_after_days=7,
        trades_retain_days=0,
        argon2_time_cost=1,
        argon2_memory_kib=64,
        grace_seconds=1.0,
        log_level="INFO",
    )


@dataclasses.dataclass
class Ledger:
    stub: LedgerServiceAsyncStub
    runtime: LedgerRuntime
    address: str


@pytest.fixture
async def ledger(database_url: str, engine: RunningEngine) -> AsyncIterator[Ledger]:
    runtime = await LedgerRuntime.open(ledger_settings(database_url, engine.address))
    server, _, port = create_server(runtime, "127.0.0.1:0")
    await server.start()
    runtime.start()
    address = f"127.0.0.1:{port}"
    async with grpc.aio.insecure_channel(address) as channel:
        yield Ledger(ledger_pb2_grpc.LedgerServiceStub(channel), runtime, address)
    await server.stop(0)
    await runtime.close()


async def caught_up(ledger: Ledger, engine: RunningEngine) -> None:
    assert ledger.runtime.ingest is not None
    async with asyncio.timeout(30):
        await ledger.runtime.ingest.wait_for(engine.runtime.engine.seq)


async def status_of(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value.code(), info.value.details() or ""


@BOTH_BACKENDS
async def test_market_history(ledger: Ledger, engine: RunningEngine) -> None:
    trader = Trader(engine.stub, seed=21)
    await trader.fund()
    await trader.run(400)
    await caught_up(ledger, engine)
    stub = ledger.stub

    trades = (await stub.GetTrades(lpb.GetTradesRequest(market="TATA_INR", limit=1000))).trades
    ids = [t.trade_id for t in trades]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) > 10
    older = await stub.GetTrades(lpb.GetTradesRequest(market="TATA_INR", limit=5, before_id=ids[3]))
    assert [t.trade_id for t in older.trades] == ids[4:9]
    oldest = ids[::-1]  # forward pages: the oldest `limit` after after_id / from a time
    ahead = lpb.GetTradesRequest(market="TATA_INR", limit=4, after_id=oldest[2], oldest_first=True)
    assert [t.trade_id for t in (await stub.GetTrades(ahead)).trades] == oldest[3:7]
    at = next(t.ts_us for t in trades if t.trade_id == oldest[5])
    since = lpb.GetTradesRequest(market="TATA_INR", limit=1000, from_us=at, oldest_first=True)
    assert all(t.ts_us >= at for t in (await stub.GetTrades(since)).trades)
    assert oldest[5] in [t.trade_id for t in (await stub.GetTrades(since)).trades]
    before = lpb.GetTradesRequest(market="TATA_INR", limit=1000, to_us=at)
    assert all(t.ts_us < at for t in (await stub.GetTrades(before)).trades)

    klines = (
        await stub.GetKlines(
            lpb.GetKlinesRequest(market="TATA_INR", interval=lpb.KLINE_INTERVAL_1M)
        )
    ).klines
    assert sum(k.trades for k in klines) == len(trades)
    assert sum(Decimal(k.volume) for k in klines) == sum(Decimal(t.quantity) for t in trades)
    assert klines[-1].close == trades[0].price

    ticker = await stub.GetTicker(lpb.GetTickerRequest(market="TATA_INR"))
    assert ticker.trades == len(trades)
    assert ticker.last == trades[0].price
    assert ticker.open == trades[-1].price
    assert Decimal(ticker.high) == max(Decimal(t.price) for t in trades)
    assert Decimal(ticker.quote_volume) == sum(Decimal(t.quote_quantity) for t in trades)
    assert Decimal(ticker.change) == Decimal(ticker.last) - Decimal(ticker.open)
    tickers = (await stub.GetTickers(lpb.GetTickersRequest())).tickers
    assert [t.market for t in tickers] == sorted(t.market for t in tickers)
    idle = next(t for t in tickers if t.market == "SOL_USDC")
    assert (idle.trades, idle.last, idle.volume) == (0, "", "0")

    markets = await stub.ListMarkets(lpb.ListMarketsRequest())
    assert "BTC_USDT" in [m.symbol for m in markets.markets]
    assert {a.symbol: a.decimals for a in markets.assets}["INR"] == 2


async def test_a_users_history_and_balances(ledger: Ledger, engine: RunningEngine) -> None:
    trader = Trader(engine.stub, seed=22)
    await trader.fund()
    await trader.run(400)
    await caught_up(ledger, engine)
    stub = ledger.stub

    balances = await stub.GetBalances(lpb.GetBalancesRequest(user_id=3))
    engine_balances = await engine.stub.GetBalances(epb.GetBalancesRequest(user_id=3))
    assert balances.seq == engine.runtime.engine.seq
    assert list(balances.balances) == list(engine_balances.balances)

    # Order history pages through every order of the user, newest first.
    seen: list[cpb.Order] = []
    cursor = 0
    while True:
        page = await stub.GetOrderHistory(
            lpb.GetOrderHistoryRequest(user_id=3, limit=7, cursor=cursor)
        )
        seen.extend(page.orders)
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert all(o.user_id == 3 for o in seen)
    assert [o.order_id for o in seen] == sorted({o.order_id for o in seen}, reverse=True)
    filled = await stub.GetOrderHistory(
        lpb.GetOrderHistoryRequest(user_id=3, status=cpb.ORDER_STATUS_FILLED, limit=1000)
    )
    assert filled.orders
    assert all(o.status == cpb.ORDER_STATUS_FILLED for o in filled.orders)
    ascending = [o.order_id for o in reversed(seen)]
    forward = await stub.GetOrderHistory(
        lpb.GetOrderHistoryRequest(user_id=3, limit=5, from_id=ascending[3], oldest_first=True)
    )
    assert ([o.order_id for o in forward.orders], forward.next_cursor) == (ascending[3:8], 0)

    fills = (await stub.GetFills(lpb.GetFillsRequest(user_id=3, limit=1000))).fills
    by_order: dict[int, Decimal] = {}
    for f in fills:
        by_order[f.order_id] = by_order.get(f.order_id, Decimal(0)) + Decimal(f.quantity)
    for order in seen:
        assert Decimal(order.executed_quantity) == by_order.get(order.order_id, 0)
    trade_ids = sorted({f.trade_id for f in fills})
    forward_fills = await stub.GetFills(
        lpb.GetFillsRequest(user_id=3, limit=3, from_trade_id=trade_ids[1], oldest_first=True)
    )
    assert [f.trade_id for f in forward_fills.fills] == trade_ids[1:4]

    listed: list[lpb.LedgerEntry] = []
    cursor = 0
    while True:
        lines = await stub.GetLedger(lpb.GetLedgerRequest(user_id=3, asset="INR", cursor=cursor))
        listed.extend(lines.entries)
        if not lines.next_cursor:
            break
        cursor = lines.next_cursor
    inr = next(b for b in balances.balances if b.asset == "INR")
    held = sum((Decimal(e.amount) for e in listed if e.bucket != lpb.BUCKET_EXTERNAL), Decimal(0))
    assert held == Decimal(inr.available) + Decimal(inr.locked)


LedgerLine = tuple[int, int, str, int, int, str, int, int, int]


async def test_get_ledger_lists_each_movement_of_a_user(
    ledger: Ledger, engine: RunningEngine
) -> None:
    # Every transfer the projection of the engine's events makes is two entries, one per
    # side; GetLedger lists a user's side of each, newest first, from both sides of the
    # stored transfers, and its cursor may fall between the two entries of one transfer.
    trader = Trader(engine.stub, seed=23)
    await trader.fund()
    await trader.run(300)
    await caught_up(ledger, engine)
    catalog = Catalog()
    batch = project(await all_events(engine.stub, engine.runtime.engine.seq), catalog, 1)
    expected: dict[int, list[LedgerLine]] = defaultdict(list)
    for transfer in batch.transfers:
        for entry_id, seq, user, asset, bucket, kind, amount, order, trade, ts in entries(transfer):
            text = format_units(amount, catalog.asset_decimals[asset])
            expected[user].append((entry_id, seq, asset, bucket, kind, text, order, trade, ts))

    async def listed(user: int, asset: str, limit: int) -> list[LedgerLine]:
        lines: list[LedgerLine] = []
        cursor = 0
        while True:
            page = await ledger.stub.GetLedger(
                lpb.GetLedgerRequest(user_id=user, asset=asset, limit=limit, cursor=cursor)
            )
            assert {e.user_id for e in page.entries} <= {user}
            lines.extend(
                (e.entry_id, e.seq, e.asset, e.bucket, e.kind, e.amount, e.order_id,
                 e.trade_id, e.ts_us)
                for e in page.entries
            )  # fmt: skip
            if not page.next_cursor:
                return lines
            cursor = page.next_cursor

    kinds = {lpb.ENTRY_KIND_DEPOSIT, lpb.ENTRY_KIND_LOCK, lpb.ENTRY_KIND_TRADE}
    assert kinds <= {line[4] for line in expected[3]}
    assert {line[4] for line in expected[0]} == {lpb.ENTRY_KIND_FEE}  # the fee account
    for user, asset, limit in (
        (3, "", 1),
        (3, "INR", 7),
        (0, "", 1),
        (0, "USDT", 7),
        (4, "TATA", 1000),
    ):
        wanted = [line for line in reversed(expected[user]) if asset in ("", line[2])]
        assert await listed(user, asset, limit) == wanted
        assert wanted


async def test_bad_requests_get_clear_errors(ledger: Ledger) -> None:
    stub = ledger.stub
    code, details = await status_of(stub.GetTrades(lpb.GetTradesRequest(market="NOPE_INR")))
    assert code == grpc.StatusCode.NOT_FOUND
    assert details.startswith("UNKNOWN_MARKET")
    code, details = await status_of(
        stub.GetKlines(lpb.GetKlinesRequest(market="TATA_INR", interval=7))  # type: ignore[arg-type]
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("INVALID_INTERVAL")


async def test_client_order_names_are_kept_once_per_user_and_id(ledger: Ledger) -> None:
    stub = ledger.stub
    for user_id, name in ((7, "x-first"), (7, "x-second"), (8, "other")):
        await stub.NameClientOrder(
            lpb.NameClientOrderRequest(user_id=user_id, client_order_id=2**40, name=name)
        )
    names = await stub.GetClientOrderNames(
        lpb.GetClientOrderNamesRequest(user_id=7, client_order_ids=[2**40, 5])
    )
    assert dict(names.names) == {2**40: "x-first"}  # the first name stays; 5 has none
    for bad in (
        lpb.NameClientOrderRequest(user_id=7, client_order_id=2**63, name="big"),
        lpb.NameClientOrderRequest(user_id=7, client_order_id=9, name="n" * 37),
        lpb.NameClientOrderRequest(user_id=7, client_order_id=9, name=""),
    ):
        code, details = await status_of(stub.NameClientOrder(bad))
        assert (code, details.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_NAME")
    names = await stub.GetClientOrderNames(
        lpb.GetClientOrderNamesRequest(user_id=7, client_order_ids=[9])
    )
    assert dict(names.names) == {}


async def test_users_and_api_keys(ledger: Ledger) -> None:
    stub = ledger.stub
    user = await stub.CreateUser(lpb.CreateUserRequest(email="Ann@x.io", password="correct horse"))
    code, details = await status_of(
        stub.CreateUser(lpb.CreateUserRequest(email="ann@X.io", password="another one"))
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert details.startswith("EMAIL_TAKEN")
    code, _ = await status_of(stub.CreateUser(lpb.CreateUserRequest(email="b@x.io", password="")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    again = await stub.Authenticate(
        lpb.AuthenticateRequest(email="ann@x.io", password="correct horse")
    )
    assert again.user_id == user.user_id
    code, details = await status_of(
        stub.Authenticate(lpb.AuthenticateRequest(email="ann@x.io", password="wrong horse"))
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert details.startswith("BAD_CREDENTIALS")

    generated = await stub.GenerateApiKey(
        lpb.GenerateApiKeyRequest(user_id=user.user_id, label="bot")
    )
    assert generated.secret
    assert generated.key.user_id == user.user_id
    found = await stub.LookupApiKey(lpb.LookupApiKeyRequest(public_key=generated.key.public_key))
    assert found == generated.key
    listed = await stub.ListApiKeys(lpb.ListApiKeysRequest(user_id=user.user_id))
    assert list(listed.keys) == [generated.key]
    revoked = await stub.RevokeApiKey(
        lpb.RevokeApiKeyRequest(user_id=user.user_id, key_id=generated.key.key_id)
    )
    assert revoked.revoked_at_us > 0
    code, _ = await status_of(
        stub.RevokeApiKey(lpb.RevokeApiKeyRequest(user_id=user.user_id + 1, key_id=1))
    )
    assert code == grpc.StatusCode.NOT_FOUND


@BOTH_BACKENDS
async def test_ingest_status_and_reconcile(ledger: Ledger, engine: RunningEngine) -> None:
    trader = Trader(engine.stub, seed=23)
    await trader.fund()
    await trader.run(200)
    reply = await ledger.stub.Reconcile(lpb.ReconcileRequest())
    assert reply.seq == engine.runtime.engine.seq
    assert not reply.differences
    assert reply.balances_checked > 10
    status = await ledger.stub.GetIngestStatus(lpb.GetIngestStatusRequest())
    assert status.connected
    assert status.last_seq >= reply.seq


async def test_the_reconcile_command(ledger: Ledger, engine: RunningEngine) -> None:
    await Trader(engine.stub, seed=24).fund()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ledger_svc.reconcile", "--ledger", ledger.address,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode == 0
    report = json.loads(out)
    assert report["seq"] == engine.runtime.engine.seq
    assert report["differences"] == []


async def test_metrics_give_batch_sizes_and_database_times(
    ledger: Ledger, engine: RunningEngine
) -> None:
    trader = Trader(engine.stub, seed=25)
    await trader.fund()
    await trader.run(300)
    await caught_up(ledger, engine)
    for market in ("TATA_INR", "TATA_INR", "NO_SUCH"):
        with contextlib.suppress(grpc.aio.AioRpcError):
            await ledger.stub.GetTrades(lpb.GetTradesRequest(market=market, limit=10))
    await ledger.stub.GetLedger(lpb.GetLedgerRequest(user_id=1, limit=10))

    page = await scrape(ledger.runtime.registry)
    seq = engine.runtime.engine.seq
    batches = page.value("ledger_ingest_batches_total")
    assert batches is not None
    assert 1 <= batches <= seq
    # One observation per stored batch, whose sizes add up to every event stored.
    assert page.value("ledger_ingest_batch_events_count") == batches
    assert page.value("ledger_ingest_batch_events_sum") == seq
    # The settings cap a batch at 1000 events: no batch is larger.
    assert page.value("ledger_ingest_batch_events_bucket", le="1000.0") == batches
    assert page.value("ledger_ingest_transaction_seconds_count") == batches
    assert (page.value("ledger_ingest_transaction_seconds_sum") or 0) > 0
    # Query RPCs' database time, by query; a failed query counts too.
    assert page.value("ledger_db_query_seconds_count", query="trades") == 3
    assert page.value("ledger_db_query_seconds_count", query="ledger") == 1
    assert page.value("ledger_db_query_seconds_count", query="klines") is None
    assert (page.value("ledger_db_query_seconds_sum", query="trades") or 0) > 0
