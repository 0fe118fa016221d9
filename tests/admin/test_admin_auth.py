"""ENGINE_ADMIN_TOKEN: the engine's admin calls need `authorization: Bearer <token>`, and so
do deposits and withdrawals sent on the Execute stream; queries and orders do not."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from launcher.ports import free_port
from servicekit.admin_token import admin_metadata
from tests.admin.conftest import TOKEN
from tests.engine.conftest import RunningEngine
from tradekit.engine_client import EngineClient, EngineUnavailable

ADMIN = admin_metadata(TOKEN)
WRONG = admin_metadata(TOKEN[:-1] + "x")


async def available(engine: RunningEngine, user: int, asset: str) -> str:
    reply = await engine.stub.GetBalances(epb.GetBalancesRequest(user_id=user))
    return next((b.available for b in reply.balances if b.asset == asset), "0")


DOGE_INR = cpb.Market(
    symbol="DOGE_INR", base="DOGE", quote="INR", tick_size="0.01", step_size="1",
    min_quantity="1", min_notional="1", max_quantity="1000000", max_price="1000",
)  # fmt: skip
ADMIN_CALLS = [
    ("Deposit", epb.DepositRequest(user_id=7, asset="INR", amount="100")),
    ("Withdraw", epb.WithdrawRequest(user_id=7, asset="INR", amount="1")),
    ("AddAsset", epb.AddAssetRequest(asset=cpb.Asset(symbol="DOGE", decimals=8))),
    ("AddMarket", epb.AddMarketRequest(market=DOGE_INR)),
    (
        "SetMarketStatus",
        epb.SetMarketStatusRequest(market="TATA_INR", status=cpb.MARKET_STATUS_HALTED),
    ),
    ("SetTriggerLimit", epb.SetTriggerLimitRequest(total=7)),
    ("Snapshot", epb.SnapshotRequest()),
    # capital: only custody and operators credit deposits and decide withdrawals
    (
        "ReportDeposit",
        epb.ReportDepositRequest(
            asset="USDT",
            network="Ethereum",
            address="0x" + "0a" * 20,
            quantity="5",
            transaction_hash="tx1",
            confirmations=9,
        ),
    ),
    (
        "DecideWithdrawal",
        epb.DecideWithdrawalRequest(withdrawal_id=1, action=epb.WithdrawalAction.ACTION_APPROVE),
    ),
    (
        "AddNetwork",
        epb.AddNetworkRequest(network=cpb.Network(asset="INR", network="Tron")),
    ),
]


@pytest.mark.parametrize(("method", "request_"), ADMIN_CALLS, ids=[m for m, _ in ADMIN_CALLS])
@pytest.mark.parametrize(
    "metadata", [(), WRONG, (("authorization", TOKEN),)], ids=["none", "wrong", "no-bearer"]
)
async def test_admin_calls_without_the_token_are_denied_and_change_nothing(
    engine: RunningEngine, method: str, request_: object, metadata: tuple[tuple[str, str], ...]
) -> None:
    before = engine.runtime.engine.seq
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await getattr(engine.stub, method)(request_, metadata=metadata)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "admin token" in (info.value.details() or "")
    assert engine.runtime.engine.seq == before
    assert not list((engine.runtime.settings.snapshot_dir).glob("*.snap"))
    denied = {"grpc_method": method, "grpc_code": "PERMISSION_DENIED"}
    registry = engine.runtime.registry
    # The server counts the call once its handler has returned, which can be just after the
    # client has read the status: wait for the count rather than race it.
    async with asyncio.timeout(30):
        while registry.get_sample_value("grpc_server_handled_total", denied) != 1:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_admin_calls_with_the_token_go_through(engine: RunningEngine) -> None:
    reply = await engine.stub.Deposit(
        epb.DepositRequest(user_id=7, asset="INR", amount="100"), metadata=ADMIN
    )
    assert reply.code == cpb.RESULT_CODE_OK
    assert await available(engine, 7, "INR") == "100.00"
    halted = await engine.stub.SetMarketStatus(
        epb.SetMarketStatusRequest(market="TATA_INR", status=cpb.MARKET_STATUS_HALTED),
        metadata=ADMIN,
    )
    assert halted.code == cpb.RESULT_CODE_OK
    snapshot = await engine.stub.Snapshot(epb.SnapshotRequest(), metadata=ADMIN)
    assert snapshot.code == cpb.RESULT_CODE_OK
    assert (engine.runtime.settings.snapshot_dir / snapshot.file).stat().st_size == (
        snapshot.size_bytes
    )
    assert snapshot.seq == engine.runtime.engine.seq


async def test_queries_and_orders_need_no_token(engine: RunningEngine) -> None:
    await engine.stub.Deposit(
        epb.DepositRequest(user_id=7, asset="INR", amount="100"), metadata=ADMIN
    )
    placed = await engine.stub.PlaceOrder(
        epb.PlaceOrderRequest(
            user_id=7, market="TATA_INR", side=cpb.SIDE_BUY, type=cpb.ORDER_TYPE_LIMIT,
            price="10", quantity="2",
        )
    )  # fmt: skip
    assert placed.code == cpb.RESULT_CODE_OK
    status = await engine.stub.GetStatus(epb.GetStatusRequest())
    assert (status.seq, status.open_orders) == (engine.runtime.engine.seq, 1)


async def test_a_stream_without_the_token_ends_at_its_first_deposit(engine: RunningEngine) -> None:
    """Orders on the stream are answered; the batch with a deposit is not applied at all."""
    await engine.stub.Deposit(
        epb.DepositRequest(user_id=7, asset="INR", amount="100"), metadata=ADMIN
    )
    async with grpc.aio.insecure_channel(engine.address) as channel:
        client = EngineClient(channel)  # no admin token
        placed = await client.place(
            epb.PlaceOrderRequest(
                user_id=7, market="TATA_INR", side=cpb.SIDE_BUY, type=cpb.ORDER_TYPE_LIMIT,
                price="10", quantity="2",
            )
        )  # fmt: skip
        assert placed.code == cpb.RESULT_CODE_OK
        seq = engine.runtime.engine.seq
        with pytest.raises(EngineUnavailable):
            await client.deposit(epb.DepositRequest(user_id=7, asset="INR", amount="5"))
        await client.close()
    assert engine.runtime.engine.seq == seq
    assert await available(engine, 7, "INR") == "79.98"  # 100 - 2 x 10 - the largest fee


async def test_the_denied_stream_says_why(engine: RunningEngine) -> None:
    async def batches() -> AsyncIterator[epb.CommandBatch]:
        yield epb.CommandBatch(
            commands=[
                epb.Command(
                    request_id=1, withdraw=epb.WithdrawRequest(user_id=7, asset="INR", amount="1")
                )
            ]
        )

    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in engine.stub.Execute(batches()):
            pass
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "deposit and withdraw" in (info.value.details() or "")


async def test_a_stream_with_the_token_moves_money(engine: RunningEngine) -> None:
    async with grpc.aio.insecure_channel(engine.address) as channel:
        client = EngineClient(channel, admin_token=TOKEN)
        reply = await client.deposit(epb.DepositRequest(user_id=8, asset="BTC", amount="0.5"))
        await client.close()
    assert reply.code == cpb.RESULT_CODE_OK
    assert reply.balance.available == "0.50000000"


def _engine_process(tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "engine_svc"],
        env={
            **os.environ,
            "ENGINE_GRPC_PORT": str(free_port()),
            "ENGINE_HOST": "127.0.0.1",
            "ENGINE_DATA_DIR": str(tmp_path),
            **env,
        },
        stderr=subprocess.PIPE,
        text=True,
    )


def test_an_engine_without_a_token_warns_that_admin_calls_are_open(tmp_path: Path) -> None:
    process = _engine_process(tmp_path, ENGINE_ADMIN_TOKEN="")
    assert process.stderr is not None
    warning = ""
    try:
        for line in process.stderr:  # the warning comes before "engine serving"
            if "ENGINE_ADMIN_TOKEN is not set" in line or "engine serving" in line:
                warning = line
                break
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    assert "ENGINE_ADMIN_TOKEN is not set" in warning
    assert '"level":"warning"' in warning


def test_a_short_token_is_refused_at_start(tmp_path: Path) -> None:
    process = _engine_process(tmp_path, ENGINE_ADMIN_TOKEN="short")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "engine_svc: configuration error: ENGINE_ADMIN_TOKEN must be at least 32" in err


async def test_every_users_orders_are_listed_only_for_one_market(engine: RunningEngine) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await engine.stub.GetOpenOrders(epb.GetOpenOrdersRequest(all_users=True))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
