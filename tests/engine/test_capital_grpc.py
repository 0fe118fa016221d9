"""Capital over gRPC on a real engine: deposit addresses, custody's reports, withdrawals,
and all of it surviving a restart (journal replay, then a snapshot)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeAlias

from exchange.common.v1 import common_pb2 as pb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1 import engine_pb2_grpc as epb_grpc
from tests.engine.conftest import running_engine

A = epb.WithdrawalAction
OUT = "0x" + "0b" * 20
Stub: TypeAlias = "epb_grpc.EngineServiceAsyncStub"


@asynccontextmanager
async def running(data_dir: Path, secret: str = "s" * 40) -> AsyncIterator[Stub]:
    async with running_engine(data_dir, deposit_address_secret=secret) as engine:
        yield engine.stub


async def address(stub: Stub, user: int, network: str = "Ethereum") -> str:
    reply = await stub.GetDepositAddress(
        epb.GetDepositAddressRequest(user_id=user, asset="USDT", network=network)
    )
    assert reply.code == 0, reply.message
    return reply.address


async def report(stub: Stub, to: str, qty: str, tx: str, confirmations: int) -> epb.DepositReply:
    return await stub.ReportDeposit(
        epb.ReportDepositRequest(
            asset="USDT",
            network="Ethereum",
            address=to,
            quantity=qty,
            transaction_hash=tx,
            confirmations=confirmations,
        )
    )


async def usdt(stub: Stub, user: int) -> tuple[str, str]:
    reply = await stub.GetBalances(epb.GetBalancesRequest(user_id=user))
    (bal,) = [b for b in reply.balances if b.asset == "USDT"]
    return bal.available, bal.locked


async def decide(stub: Stub, wid: int, action: int, tx: str = "") -> epb.WithdrawalReply:
    return await stub.DecideWithdrawal(
        epb.DecideWithdrawalRequest(withdrawal_id=wid, action=action, transaction_hash=tx)  # type: ignore[arg-type]
    )


async def test_addresses_are_stable_per_user_and_network_and_name_their_user(
    tmp_path: Path,
) -> None:
    async with running(tmp_path / "a") as stub:
        first = await address(stub, 7)
        assert first.startswith("0x")
        assert len(first) == 42
        assert await address(stub, 7) == first
        assert await address(stub, 8) != first
        solana = await address(stub, 7, "Solana")
        assert 32 <= len(solana) <= 44
        assert solana != first
        reply = await stub.GetDepositAddress(
            epb.GetDepositAddressRequest(user_id=7, asset="USDT", network="Tron")
        )
        assert reply.code == pb.RESULT_CODE_UNKNOWN_NETWORK
    async with running(tmp_path / "b") as other:  # another engine, same secret
        assert await address(other, 7) == first
    async with running(tmp_path / "c", secret="t" * 40) as stranger:  # another deployment
        assert await address(stranger, 7) != first
        refused = await report(stranger, first, "10", "abc", 5)
        assert refused.code == pb.RESULT_CODE_INVALID_ADDRESS


async def test_deposits_and_withdrawals_survive_restarts(tmp_path: Path) -> None:
    async with running(tmp_path) as stub:
        to = await address(stub, 5)
        pending = await report(stub, to, "500", "tx1", 1)
        assert pending.code == 0
        assert not pending.credited
        assert pending.deposit.status == pb.DEPOSIT_STATUS_PENDING
        credited = await report(stub, to, "500", "tx1", 3)
        assert credited.credited
        assert credited.deposit.user_id == 5
        again = await report(stub, to, "500", "tx1", 7)  # a second custody worker
        assert again.code == 0
        assert not again.credited
        assert again.seq == 0
        conflict = await report(stub, to, "600", "tx1", 7)
        assert conflict.code == pb.RESULT_CODE_DEPOSIT_CONFLICT
        assert await usdt(stub, 5) == ("500.000000", "0.000000")
        asked = await stub.RequestWithdrawal(
            epb.RequestWithdrawalRequest(
                user_id=5,
                asset="USDT",
                network="Ethereum",
                address=OUT,
                quantity="100",
                memo="tag 42",
            )
        )
        assert asked.code == 0, asked.message
        assert asked.withdrawal.memo == "tag 42"
        assert asked.withdrawal.status == pb.WITHDRAWAL_STATUS_APPROVED
        assert asked.withdrawal.fee == "1.000000"
        second = await stub.RequestWithdrawal(
            epb.RequestWithdrawalRequest(
                user_id=5, asset="USDT", network="Ethereum", address=OUT, quantity="200"
            )
        )
        assert await usdt(stub, 5) == ("198.000000", "302.000000")
        too_much = await stub.RequestWithdrawal(
            epb.RequestWithdrawalRequest(
                user_id=5, asset="USDT", network="Ethereum", address=OUT, quantity="198"
            )
        )
        assert too_much.code == pb.RESULT_CODE_INSUFFICIENT_FUNDS
        assert too_much.details["required"] == "199.000000"
        hash_before = (await stub.GetStateHash(epb.GetStateHashRequest())).state_hash

    first, other = asked.withdrawal.withdrawal_id, second.withdrawal.withdrawal_id
    async with running(tmp_path) as stub:  # recovered from the journal
        assert (await stub.GetStateHash(epb.GetStateHashRequest())).state_hash == hash_before
        assert await usdt(stub, 5) == ("198.000000", "302.000000")
        assert (await report(stub, to, "500", "tx1", 9)).seq == 0  # still credited once
        done = await decide(stub, first, A.ACTION_COMPLETE, "0xsent")
        assert done.code == 0
        assert done.withdrawal.status == pb.WITHDRAWAL_STATUS_CONFIRMED
        assert (await stub.Snapshot(epb.SnapshotRequest())).code == 0

    async with running(tmp_path) as stub:  # recovered from the snapshot
        repeat = await decide(stub, first, A.ACTION_COMPLETE, "0xsent")
        assert repeat.code == 0
        assert repeat.seq == 0
        declined = await decide(stub, other, A.ACTION_DECLINE)
        assert declined.withdrawal.status == pb.WITHDRAWAL_STATUS_DECLINED
        late = await decide(stub, other, A.ACTION_COMPLETE, "0xlate")
        assert late.code == pb.RESULT_CODE_WITHDRAWAL_FINAL
        assert await usdt(stub, 5) == ("399.000000", "0.000000")
        history = await stub.ListWithdrawals(epb.ListCapitalRequest(user_id=5))
        assert [(w.withdrawal_id, w.memo) for w in history.withdrawals] == [
            (other, ""), (first, "tag 42"),
        ]  # fmt: skip
        assert (await stub.ListWithdrawals(epb.ListCapitalRequest(user_id=6))).withdrawals == []
        deposits = await stub.ListDeposits(epb.ListCapitalRequest(user_id=5))
        assert [d.transaction_hash for d in deposits.deposits] == ["tx1"]
