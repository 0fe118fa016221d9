"""Kill -9 of the engine, and of the ledger, between each step of a withdrawal.

Real processes under the supervisor (PostgreSQL, engine, ledger), restarted after each
crash as `make run` does. The steps: request (the lock journaled before the reply), the
ledger's projection of it, an operator's approval, completion or decline. For every step,
one withdrawal (its own user) sees its victim SIGKILLed right after that step; the step is
then repeated, as a client or custody would after losing the answer, and the lifecycle
finished. Afterwards each withdrawal was locked once and ended once (paid at most once, or
released once), each user's balance and ledger rows say so, the fee account holds one fee
per completion, and the ledger reconciles to zero against the engine.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1 import engine_pb2_grpc as epb_grpc
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.ledger.v1 import ledger_pb2_grpc as lpb_grpc
from launcher.supervisor import RestartPolicy, Supervisor
from tests.ledger.events import all_events
from tests.ledger.test_restarts import engine_seq, specs, wait_stored

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub
    from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceAsyncStub

OUT = "0x" + "0b" * 20
FUNDS = Decimal(20000)
QUANTITY = Decimal(12000)  # above USDT/Ethereum's approval threshold (10000): an operator
FEE = Decimal(1)
A = epb.WithdrawalAction
STEPS = ("requested", "projected", "approved", "ended")
# (the step after which the victim dies, how the withdrawal ends)
CASES = [(step, end) for step in STEPS for end in (A.ACTION_COMPLETE, A.ACTION_DECLINE)]


@dataclass
class Case:
    user: int
    killed_after: str
    end: int
    withdrawal_id: int = 0


async def request(engine: EngineServiceAsyncStub, case: Case) -> epb.WithdrawalReply:
    return await engine.RequestWithdrawal(
        epb.RequestWithdrawalRequest(
            user_id=case.user, asset="USDT", network="Ethereum", address=OUT,
            quantity=str(QUANTITY), client_id=case.user,
        ),
        wait_for_ready=True, timeout=30,
    )  # fmt: skip


async def decide(engine: EngineServiceAsyncStub, case: Case, action: int) -> epb.WithdrawalReply:
    tx = f"paid{case.user}" if action == A.ACTION_COMPLETE else ""
    return await engine.DecideWithdrawal(
        epb.DecideWithdrawalRequest(
            withdrawal_id=case.withdrawal_id,
            action=action,  # type: ignore[arg-type]
            transaction_hash=tx,
        ),
        wait_for_ready=True,
        timeout=30,
    )


async def step(
    engine: EngineServiceAsyncStub, ledger: LedgerServiceAsyncStub, case: Case, name: str
) -> None:
    """One step of the lifecycle; its reply must say it took effect (or already had)."""
    if name == "requested":
        reply = await request(engine, case)
        assert reply.code == 0, reply.message
        assert reply.withdrawal.status == cpb.WITHDRAWAL_STATUS_PENDING_APPROVAL
        assert case.withdrawal_id in (0, reply.withdrawal.withdrawal_id)  # a retry: the same
        case.withdrawal_id = reply.withdrawal.withdrawal_id
    elif name == "projected":
        await wait_stored(ledger, await engine_seq(engine))
    elif name == "approved":
        reply = await decide(engine, case, A.ACTION_APPROVE)
        assert reply.code == 0, reply.message
        assert reply.withdrawal.status == cpb.WITHDRAWAL_STATUS_APPROVED
    else:
        reply = await decide(engine, case, case.end)
        assert reply.code == 0, reply.message
        ended = (
            cpb.WITHDRAWAL_STATUS_CONFIRMED
            if case.end == A.ACTION_COMPLETE
            else cpb.WITHDRAWAL_STATUS_DECLINED
        )
        assert reply.withdrawal.status == ended
        other = A.ACTION_DECLINE if case.end == A.ACTION_COMPLETE else A.ACTION_COMPLETE
        refused = await decide(engine, case, other)
        assert refused.code == cpb.RESULT_CODE_WITHDRAWAL_FINAL


@pytest.mark.parametrize("victim", ["engine", "ledger"])
async def test_a_kill_between_any_two_steps_of_a_withdrawal_locks_and_ends_it_once(
    tmp_path: Path, victim: str
) -> None:
    service_specs, _, engine_address, ledger_address = specs(tmp_path)
    cases = [Case(user, step, end) for user, (step, end) in enumerate(CASES, start=1)]
    quick = RestartPolicy(initial=0.1, maximum=0.1)  # one kill after another
    async with (
        Supervisor(service_specs, grace=5.0, restart_policy=quick, prefix_output=False) as sup,
        grpc.aio.insecure_channel(engine_address) as engine_channel,
        grpc.aio.insecure_channel(ledger_address) as ledger_channel,
    ):
        engine: EngineServiceAsyncStub = epb_grpc.EngineServiceStub(engine_channel)
        ledger: LedgerServiceAsyncStub = lpb_grpc.LedgerServiceStub(ledger_channel)
        for case in cases:
            funded = await engine.Deposit(
                epb.DepositRequest(user_id=case.user, asset="USDT", amount=str(FUNDS))
            )
            assert funded.code == 0, funded.message
        for n, case in enumerate(cases, start=1):
            for name in STEPS:
                await step(engine, ledger, case, name)
                if name != case.killed_after:
                    continue
                await sup.kill(victim)
                await sup.wait_healthy(victim, timeout=60)
                assert sup.restarts(victim) == n
                await step(engine, ledger, case, name)  # the answer was lost: again

        final = await engine_seq(engine)
        await wait_stored(ledger, final)
        reconciled = await ledger.Reconcile(lpb.ReconcileRequest())
        assert reconciled.seq == final
        assert list(reconciled.differences) == []

        moves: Counter[tuple[int, str]] = Counter()
        for e in await all_events(engine, final):
            if e.HasField("withdrawal_changed"):
                c = e.withdrawal_changed
                for field in ("locked", "unlocked", "paid", "fee_paid"):
                    if Decimal(getattr(c, field) or 0):
                        moves[(c.withdrawal.withdrawal_id, field)] += 1
        completed = 0
        for case in cases:
            paid = case.end == A.ACTION_COMPLETE
            completed += paid
            wid = case.withdrawal_id
            assert (moves[(wid, "locked")], moves[(wid, "paid")], moves[(wid, "fee_paid")],
                    moves[(wid, "unlocked")]) == ((1, 1, 1, 0) if paid else (1, 0, 0, 1)), (
                case
            )  # fmt: skip
            listed = await engine.ListWithdrawals(epb.ListCapitalRequest(user_id=case.user))
            assert [w.withdrawal_id for w in listed.withdrawals] == [wid]
            (balance,) = (
                await engine.GetBalances(epb.GetBalancesRequest(user_id=case.user))
            ).balances
            left = FUNDS - (QUANTITY + FEE if paid else 0)
            assert (Decimal(balance.available), Decimal(balance.locked)) == (left, Decimal(0)), case
            rows = await ledger.GetLedger(lpb.GetLedgerRequest(user_id=case.user, asset="USDT"))
            kinds = Counter(e.kind for e in rows.entries)
            ending = (
                {lpb.ENTRY_KIND_WITHDRAW: 2, lpb.ENTRY_KIND_FEE: 1}
                if paid
                else {lpb.ENTRY_KIND_UNLOCK: 2}
            )
            assert kinds == {lpb.ENTRY_KIND_DEPOSIT: 2, lpb.ENTRY_KIND_LOCK: 2, **ending}, case
        fees = await engine.GetBalances(epb.GetBalancesRequest(user_id=0))
        held = {b.asset: Decimal(b.available) for b in fees.balances}
        assert held.get("USDT", Decimal(0)) == FEE * completed
