"""The fault suite's capital checks catch what they are for: a deposit credited twice or
answered confirmed and never credited, a withdrawal locked twice, paid twice, paid and
released, left open (locked), acknowledged both completed and declined, a refused request
applied, an acknowledged one missing or with another memo, a refusal as final that does
not fit the history, while an onramp deposit is the load's, not custody's; and against a
real engine, operators' approvals, declines, completions, repeats and races leave records
that equal the history, which the engine check compares deposit by deposit and withdrawal
by withdrawal."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

from chaos.capital_checks import check_capital, check_capital_engine
from chaos.checks import Findings
from chaos.custody import APPROVE, COMPLETE, DECLINE, Operators
from chaos.journal import Truth, read_truth
from chaos.record import Decision, DepositReport, Outcome, Record, WithdrawalAsk
from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from tests.chaos.test_checks import history
from tests.engine.test_capital_grpc import OUT, address, report, running
from tradekit.markets import ONRAMP_NETWORK

ALICE, BOB = 11, 12
PENDING, APPROVED = cpb.WITHDRAWAL_STATUS_PENDING_APPROVAL, cpb.WITHDRAWAL_STATUS_APPROVED
CONFIRMED, DECLINED = cpb.WITHDRAWAL_STATUS_CONFIRMED, cpb.WITHDRAWAL_STATUS_DECLINED
FINAL = cpb.RESULT_CODE_WITHDRAWAL_FINAL


def with_usdt(*bodies: dict[str, Any]) -> Truth:
    return history({"asset_listed": cpb.AssetListed(asset=cpb.Asset(symbol="USDT", decimals=6))},
                   *bodies)  # fmt: skip


def recorded(tx: str, confirmations: int, credited: str = "0", user: int = ALICE) -> dict[str, Any]:
    status = cpb.DEPOSIT_STATUS_CONFIRMED if credited != "0" else cpb.DEPOSIT_STATUS_PENDING
    deposit = cpb.Deposit(
        user_id=user, asset="USDT", network="Solana", quantity="100", transaction_hash=tx,
        confirmations=confirmations, status=status,
    )  # fmt: skip
    return {"deposit_recorded": cpb.DepositRecorded(deposit=deposit, credited=credited)}


def changed(
    wid: int, status: int, tx: str = "", client_id: int = 0, **moved: str
) -> dict[str, Any]:
    w = cpb.Withdrawal(withdrawal_id=wid, user_id=ALICE, asset="USDT", network="Solana",
                       quantity="10", fee="0.5", status=status, transaction_hash=tx,  # type: ignore[arg-type]
                       client_id=client_id or wid)  # fmt: skip
    return {"withdrawal_changed": cpb.WithdrawalChanged(withdrawal=w, **moved)}


def requested(wid: int, status: int = APPROVED, client_id: int = 0) -> dict[str, Any]:
    return changed(wid, status, client_id=client_id, locked="10.5")


def paid(wid: int, tx: str = "t1") -> dict[str, Any]:
    return changed(wid, CONFIRMED, tx, paid="10", fee_paid="0.5")


def released(wid: int) -> dict[str, Any]:
    return changed(wid, DECLINED, unlocked="10.5")


def ask(client_id: int, outcome: Outcome = Outcome.ACKED, wid: int = 0) -> WithdrawalAsk:
    return WithdrawalAsk(ALICE, client_id, "USDT", "Solana", Decimal("10"), outcome,
                         wid or client_id)  # fmt: skip


def asked(*asks: WithdrawalAsk, decisions: tuple[Decision, ...] = ()) -> Record:
    record = Record()
    for a in asks:
        record.withdrawal_asks[(a.user_id, a.client_id)] = a
    record.decisions.extend(decisions)
    return record


def reported(tx: str, confirmations: int, confirmed: bool) -> DepositReport:
    return DepositReport("Solana", tx, ALICE, "USDT", Decimal("100"), confirmations,
                         Outcome.ACKED, confirmed)  # fmt: skip


def findings_of(record: Record, truth: Truth) -> dict[str, int]:
    found = Findings()
    check_capital(record, truth, {ALICE, BOB}, found)
    return dict(found.counts)


def test_a_capital_history_that_holds_every_answer_passes() -> None:
    record = asked(
        ask(1),
        ask(2),
        ask(3, Outcome.UNKNOWN),  # applied or not: both fine
        decisions=(
            Decision(1, COMPLETE, "t1", Outcome.ACKED),
            Decision(1, COMPLETE, "t1", Outcome.ACKED),  # a repeat changes nothing
            Decision(1, DECLINE, "", Outcome.REFUSED, FINAL),  # lost the race to the payment
            Decision(2, APPROVE, "", Outcome.ACKED),
            Decision(2, DECLINE, "", Outcome.ACKED),
            Decision(2, COMPLETE, "t2", Outcome.REFUSED, FINAL),
        ),
    )
    record.deposit_reports += [reported("d1", 0, False), reported("d1", 1, True),
                               reported("d1", 1, True)]  # fmt: skip
    truth = with_usdt(
        recorded("d1", 0),
        recorded("d1", 1, credited="100"),
        requested(1),
        requested(2, PENDING),
        paid(1),
        changed(2, APPROVED),
        released(2),
    )
    assert findings_of(record, truth) == {}
    # Money: the deposit came in, the payment went out, the fee stayed (in the fee account).
    assert truth.net["USDT"] == (100 - 10) * 10**6


def test_a_withdrawal_paid_twice_is_a_duplicate() -> None:
    record = asked(ask(1))
    truth = with_usdt(requested(1), paid(1), paid(1))
    assert findings_of(record, truth) == {"duplicate": 1, "money": 1}  # 20 left, not 10


def test_a_withdrawal_paid_and_released_is_a_duplicate() -> None:
    record = asked(ask(1))
    truth = with_usdt(requested(1), paid(1), released(1))
    assert findings_of(record, truth) == {"duplicate": 1}


def test_a_withdrawal_released_twice_or_locked_twice_is_a_duplicate() -> None:
    assert findings_of(asked(ask(1)), with_usdt(requested(1), released(1), released(1))) == {
        "duplicate": 1,
        "money": 1,  # it released more than it locked
    }
    assert findings_of(asked(ask(1)), with_usdt(requested(1), requested(1), released(1))) == {
        "duplicate": 1,
        "money": 1,  # it released less than it locked
    }


def test_a_withdrawal_left_open_holds_its_lock_and_is_found() -> None:
    found = findings_of(asked(ask(1)), with_usdt(requested(1)))
    assert found == {"money": 1}


def test_acknowledged_completion_and_decline_of_one_withdrawal_are_found() -> None:
    record = asked(
        ask(1),
        decisions=(
            Decision(1, COMPLETE, "t1", Outcome.ACKED),
            Decision(1, DECLINE, "", Outcome.ACKED),
        ),
    )
    found = findings_of(record, with_usdt(requested(1), paid(1)))
    assert found == {"duplicate": 1, "wrong": 1}  # the decline did not happen


def test_a_refusal_as_final_that_does_not_fit_the_history_is_wrong() -> None:
    record = asked(ask(1), decisions=(Decision(1, DECLINE, "", Outcome.REFUSED, FINAL),))
    assert findings_of(record, with_usdt(requested(1), released(1))) == {"wrong": 1}


def test_withdrawal_requests_are_held_to_their_answers() -> None:
    # Acknowledged, missing: lost. Refused, applied: found. One clientId twice: a duplicate.
    assert findings_of(asked(ask(1)), with_usdt()) == {"lost": 1}
    refused = asked(ask(1, Outcome.REFUSED))
    assert findings_of(refused, with_usdt(requested(1), released(1))) == {"refused_but_applied": 1}
    twice = with_usdt(requested(1), released(1), requested(2, client_id=1), released(2))
    assert findings_of(asked(ask(1)), twice) == {"duplicate": 1}
    assert findings_of(Record(), with_usdt(requested(1), released(1))) == {"phantom": 1}
    # Acknowledged with its memo, recorded without it (or with another): wrong.
    tagged = dataclasses.replace(ask(1), memo="memo 1")
    assert findings_of(asked(tagged), with_usdt(requested(1), released(1))) == {"wrong": 1}


def test_an_onramp_deposit_is_the_loads_not_a_phantom_of_custody() -> None:
    onramp = recorded("r1", 0, credited="100")
    onramp["deposit_recorded"].deposit.network = ONRAMP_NETWORK
    truth = with_usdt(onramp)
    assert findings_of(Record(), truth) == {}
    assert truth.deposits == {(ALICE, "USDT", Decimal("100")): 1}


def test_a_deposit_credited_twice_or_answered_confirmed_and_never_credited_is_found() -> None:
    record = Record()
    record.deposit_reports += [reported("d1", 1, True), reported("d2", 1, True)]
    truth = with_usdt(
        recorded("d1", 1, credited="100"),
        recorded("d1", 2, credited="100"),
        recorded("d2", 0),
    )
    # d1 credited twice (200 for a transfer of 100), d2 confirmed and never credited
    assert findings_of(record, truth) == {"duplicate": 1, "wrong": 1, "lost": 1}
    assert findings_of(Record(), with_usdt(recorded("d3", 1, credited="100"))) == {"phantom": 1}


async def test_operators_races_and_repeats_on_a_real_engine_leave_a_history_that_checks(
    tmp_path: Path,
) -> None:
    """Withdrawals decided by the suite's operators (random actions, races, repeats, then the
    drain) on a real engine: the checks find nothing, and the engine check finds a record
    the history lacks, or one that differs."""
    record = Record()
    async with running(tmp_path) as stub:
        to = await address(stub, ALICE)
        assert (await report(stub, to, "100000", "funds", 3)).credited
        record.deposit_reports.append(
            DepositReport(
                "Ethereum", "funds", ALICE, "USDT", Decimal("100000"), 3, Outcome.ACKED, True
            )
        )
        for client_id in range(1, 41):
            quantity = "10001" if client_id % 4 == 0 else "20"  # above the threshold: held
            reply = await stub.RequestWithdrawal(
                epb.RequestWithdrawalRequest(
                    user_id=ALICE,
                    asset="USDT",
                    network="Ethereum",
                    address=OUT,
                    quantity=quantity,
                    client_id=client_id,
                )
            )
            if reply.code == cpb.RESULT_CODE_WITHDRAWAL_LIMIT:
                record.withdrawal_asks[(ALICE, client_id)] = WithdrawalAsk(
                    ALICE, client_id, "USDT", "Ethereum", Decimal(quantity), Outcome.REFUSED
                )
                continue
            assert reply.code == 0, reply.message
            record.withdrawal_asks[(ALICE, client_id)] = WithdrawalAsk(
                ALICE, client_id, "USDT", "Ethereum", Decimal(quantity), Outcome.ACKED,
                reply.withdrawal.withdrawal_id,
            )  # fmt: skip
        operators = Operators(stub, "", {ALICE}, record, seed=3)
        for _ in range(4):
            for w in await operators.open_withdrawals():
                await operators.act(w)
        await operators.drain()
        assert await operators.open_withdrawals() == []
        status = await stub.GetStatus(epb.GetStatusRequest())
        truth = await read_truth(stub, status.seq)

        found = Findings()
        check_capital(record, truth, {ALICE}, found)
        await check_capital_engine(stub, truth, found)
        assert dict(found.counts) == {}, found.examples
        refused = {d.code for d in record.decisions if d.outcome is Outcome.REFUSED}
        assert FINAL in refused  # races and late completions were refused, and checked
        ended = {w.status for w in truth.capital_withdrawals.values()}
        assert ended == {CONFIRMED, DECLINED}
        assert any(w.held for w in truth.capital_withdrawals.values())

        # A history the engine does not match: a withdrawal it lacks, one it ended otherwise.
        some = next(w for w in truth.capital_withdrawals.values() if w.status == CONFIRMED)
        some.status = DECLINED
        truth.apply(cpb.EngineEvent(seq=truth.last_seq + 1, **requested(10_000)))
        found = Findings()
        await check_capital_engine(stub, truth, found)
        assert dict(found.counts) == {"lost": 1, "wrong": 1}
