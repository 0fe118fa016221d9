"""Disk trouble: a journal that cannot be written makes the engine refuse every new command with
a clear error instead of acknowledging what it cannot keep.

The engine runs with a limit on the size of the files it may write (RLIMIT_FSIZE, set by
util-linux's `prlimit`). Python ignores SIGXFSZ, so a journal write past the limit fails
with EFBIG, or comes out short, exactly where a full disk fails with ENOSPC. Started again
without the limit, the engine holds exactly what it acknowledged.
"""

from __future__ import annotations

import shutil
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1.engine_pb2_grpc import EngineServiceStub
from launcher.ports import free_port
from launcher.supervisor import ServiceSpec, Supervisor

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux's prlimit"),
]
FILE_LIMIT = 64 * 1024  # bytes: the listing of the markets and a few hundred orders
USER = 1


def engine_spec(data_dir: Path, port: int, *, file_limit: int | None) -> ServiceSpec:
    argv = [sys.executable, "-m", "engine_svc"]
    if file_limit is not None:
        argv = ["prlimit", f"--fsize={file_limit}", *argv]
    return ServiceSpec(
        name="engine",
        argv=argv,
        env={
            "ENGINE_HOST": "127.0.0.1",
            "ENGINE_GRPC_PORT": str(port),
            "ENGINE_DATA_DIR": str(data_dir),
        },
        health_address=f"127.0.0.1:{port}",
    )


def buy(client_id: int) -> epb.PlaceOrderRequest:
    return epb.PlaceOrderRequest(
        user_id=USER, market="TATA_INR", side=cpb.SIDE_BUY, type=cpb.ORDER_TYPE_LIMIT,
        price="1.00", quantity="1", time_in_force=cpb.TIME_IN_FORCE_GTC,
        client_order_id=client_id,
    )  # fmt: skip


async def fill_the_disk(engine: EngineServiceAsyncStub) -> tuple[list[int], epb.PlaceOrderReply]:
    """Place resting orders until one is refused: the ids acknowledged, and the refusal."""
    acknowledged: list[int] = []
    for client_id in range(1, 10_000):
        reply = await engine.PlaceOrder(buy(client_id))
        if reply.code != cpb.RESULT_CODE_OK:
            return acknowledged, reply
        acknowledged.append(reply.order.order_id)
    raise AssertionError("the journal never filled up")


async def test_an_unwritable_journal_refuses_commands_and_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    data_dir = tmp_path / "engine"
    limited = engine_spec(data_dir, port, file_limit=FILE_LIMIT)
    async with (
        Supervisor([limited], grace=5, prefix_output=False),
        grpc.aio.insecure_channel(address) as channel,
    ):
        engine: EngineServiceAsyncStub = EngineServiceStub(channel)
        deposit = epb.DepositRequest(user_id=USER, asset="INR", amount="100000")
        assert (await engine.Deposit(deposit)).code == cpb.RESULT_CODE_OK
        acknowledged, refusal = await fill_the_disk(engine)

        assert len(acknowledged) > 100
        assert refusal.code == cpb.RESULT_CODE_UNAVAILABLE
        assert "journal write failed" in refusal.message
        status = await engine.GetStatus(epb.GetStatusRequest())
        assert "journal write failed" in status.journal_failure
        # From now on everything is refused, whatever it is.
        assert (await engine.Deposit(deposit)).code == cpb.RESULT_CODE_UNAVAILABLE
        cancel = epb.CancelOrderRequest(user_id=USER, order_id=acknowledged[0])
        assert (await engine.CancelOrder(cancel)).code == cpb.RESULT_CODE_UNAVAILABLE
        assert (await engine.PlaceOrder(buy(20_000))).code == cpb.RESULT_CODE_UNAVAILABLE

    # Room again: the restarted engine holds what was acknowledged, and only that.
    unlimited = engine_spec(data_dir, port, file_limit=None)
    async with (
        Supervisor([unlimited], grace=5, prefix_output=False),
        grpc.aio.insecure_channel(address) as channel,
    ):
        engine = EngineServiceStub(channel)
        reply = await engine.GetOpenOrders(epb.GetOpenOrdersRequest(user_id=USER))
        assert [o.order_id for o in reply.orders] == acknowledged
        balances = await engine.GetBalances(epb.GetBalancesRequest(user_id=USER))
        (inr,) = [b for b in balances.balances if b.asset == "INR"]
        assert Decimal(inr.available) + Decimal(inr.locked) == Decimal("100000")  # one deposit
        assert (await engine.PlaceOrder(buy(30_000))).code == cpb.RESULT_CODE_OK


async def test_after_a_journal_failure_queries_show_nothing_that_was_refused(
    tmp_path: Path,
) -> None:
    port = free_port()
    limited = engine_spec(tmp_path / "engine", port, file_limit=FILE_LIMIT)
    async with (
        Supervisor([limited], grace=5, prefix_output=False),
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        engine: EngineServiceAsyncStub = EngineServiceStub(channel)
        deposit = epb.DepositRequest(user_id=USER, asset="INR", amount="100000")
        assert (await engine.Deposit(deposit)).code == cpb.RESULT_CODE_OK
        acknowledged, refusal = await fill_the_disk(engine)
        assert refusal.code == cpb.RESULT_CODE_UNAVAILABLE

        reply = await engine.GetOpenOrders(epb.GetOpenOrdersRequest(user_id=USER))
        assert [o.order_id for o in reply.orders] == acknowledged
        rolled_back = await engine.GetStateHash(epb.GetStateHashRequest())

    # What the failed engine shows is exactly what the disk holds: a restart changes nothing.
    unlimited = engine_spec(tmp_path / "engine", port, file_limit=None)
    async with (
        Supervisor([unlimited], grace=5, prefix_output=False),
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        engine = EngineServiceStub(channel)
        recovered = await engine.GetStateHash(epb.GetStateHashRequest())
    assert (recovered.seq, recovered.state_hash) == (rolled_back.seq, rolled_back.state_hash)
