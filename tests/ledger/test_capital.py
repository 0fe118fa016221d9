"""Capital in the ledger: deposits, withdrawal locks, completions with their fee and
declines are double-entry movements, and the ledger still reconciles to zero."""

from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from tests.engine.conftest import RunningEngine
from tests.ledger.test_service import Ledger, caught_up
from tests.ledger.test_service import ledger as ledger

OUT = "0x" + "0b" * 20
A = epb.WithdrawalAction


async def test_capital_movements_reconcile_to_zero(ledger: Ledger, engine: RunningEngine) -> None:
    stub = engine.stub
    for user in (1, 2):
        address = await stub.GetDepositAddress(
            epb.GetDepositAddressRequest(user_id=user, asset="USDT", network="Ethereum")
        )
        for confirmations in (1, 3, 3):  # pending, credited, repeated
            reply = await stub.ReportDeposit(
                epb.ReportDepositRequest(
                    asset="USDT",
                    network="Ethereum",
                    address=address.address,
                    quantity="20000",
                    transaction_hash=f"in{user}",
                    confirmations=confirmations,
                )
            )
            assert reply.code == 0, reply.message
    ids = []
    for user, quantity in ((1, "100"), (1, "12000"), (2, "50")):
        asked = await stub.RequestWithdrawal(
            epb.RequestWithdrawalRequest(
                user_id=user, asset="USDT", network="Ethereum", address=OUT, quantity=quantity
            )
        )
        assert asked.code == 0, asked.message
        ids.append(asked.withdrawal.withdrawal_id)
    decisions = [
        (ids[0], A.ACTION_COMPLETE, "0xdone"),
        (ids[0], A.ACTION_COMPLETE, "0xdone"),  # custody's retry
        (ids[1], A.ACTION_APPROVE, ""),
        (ids[1], A.ACTION_DECLINE, ""),
        (ids[1], A.ACTION_DECLINE, ""),
    ]  # the third stays pending, locked
    for wid, action, tx in decisions:
        decided = await stub.DecideWithdrawal(
            epb.DecideWithdrawalRequest(withdrawal_id=wid, action=action, transaction_hash=tx)
        )
        assert decided.code == 0, decided.message
    await caught_up(ledger, engine)
    report = await ledger.stub.Reconcile(lpb.ReconcileRequest())
    assert report.seq == engine.runtime.engine.seq
    assert not report.differences
    history = await ledger.stub.GetLedger(lpb.GetLedgerRequest(user_id=1, asset="USDT"))
    moves = sorted((e.kind, e.bucket, e.amount) for e in history.entries)
    k, b = lpb, lpb
    assert moves == sorted([
        (k.ENTRY_KIND_DEPOSIT, b.BUCKET_EXTERNAL, "-20000.000000"),
        (k.ENTRY_KIND_DEPOSIT, b.BUCKET_AVAILABLE, "20000.000000"),  # once, though reported thrice
        (k.ENTRY_KIND_LOCK, b.BUCKET_AVAILABLE, "-101.000000"),  # 100 + the fee
        (k.ENTRY_KIND_LOCK, b.BUCKET_LOCKED, "101.000000"),
        (k.ENTRY_KIND_LOCK, b.BUCKET_AVAILABLE, "-12001.000000"),
        (k.ENTRY_KIND_LOCK, b.BUCKET_LOCKED, "12001.000000"),
        (k.ENTRY_KIND_WITHDRAW, b.BUCKET_LOCKED, "-100.000000"),  # completed once
        (k.ENTRY_KIND_WITHDRAW, b.BUCKET_EXTERNAL, "100.000000"),
        (k.ENTRY_KIND_FEE, b.BUCKET_LOCKED, "-1.000000"),
        (k.ENTRY_KIND_UNLOCK, b.BUCKET_LOCKED, "-12001.000000"),  # declined once
        (k.ENTRY_KIND_UNLOCK, b.BUCKET_AVAILABLE, "12001.000000"),
    ])  # fmt: skip
    fees = await ledger.stub.GetLedger(lpb.GetLedgerRequest(user_id=0, asset="USDT"))
    assert [(e.kind, e.amount) for e in fees.entries] == [(lpb.ENTRY_KIND_FEE, "1.000000")]
