"""Capital in the core: custody's deposit reports, withdrawals from request to their end.

Networks of engine_svc/markets.toml: USDT on Ethereum (fee 1, min 5, max 100000, 3
confirmations, approval above 10000, daily limit 50000), USDC on Ethereum (withdrawals off).
Every command goes through the driver, which checks the invariants and rebuilds balances
from the events after each one.
"""

from collections.abc import Callable
from functools import partial

from engine_svc.core.capital_messages import (
    DecideWithdrawal,
    DepositRecorded,
    DepositStatus,
    ReportDeposit,
    RequestWithdrawal,
    WithdrawalAction,
    WithdrawalChanged,
    WithdrawalStatus,
)
from engine_svc.core.types import Code
from tests.engine.core.driver import Exchange, Outcome, uid
from tradekit.markets import ONRAMP_NETWORK

ALICE_ETH = "0x" + "a1" * 20
OUT = "0x" + "0b" * 20
USDT = 10**6
APPROVE, DECLINE, COMPLETE = WithdrawalAction


def report(ex: Exchange, tx: str, amount: int, confirmations: int, user: str = "alice") -> Outcome:
    return ex.apply(
        ReportDeposit(uid(user), "USDT", "Ethereum", ALICE_ETH, amount, tx, confirmations)
    )


def request(ex: Exchange, amount: int, address: str = OUT, network: str = "Ethereum") -> int:
    out = ex.apply(RequestWithdrawal(uid("alice"), "USDT", network, address, amount, 0))
    (changed,) = out.events
    assert isinstance(changed, WithdrawalChanged)
    return changed.withdrawal_id


def decide(ex: Exchange, wid: int, action: WithdrawalAction, tx: str = "") -> Outcome:
    return ex.apply(DecideWithdrawal(wid, action, tx))


def funded(amount: int = 1000 * USDT) -> Exchange:
    ex = Exchange()
    report(ex, "seed", amount, 3)
    return ex


def test_a_deposit_is_pending_until_confirmed_then_credited_once() -> None:
    ex = Exchange()
    (pending,) = report(ex, "t1", 50 * USDT, 1).events
    assert isinstance(pending, DepositRecorded)
    assert (pending.status, pending.credited) == (DepositStatus.PENDING, 0)
    assert ex.balances("alice") == {}
    assert report(ex, "t1", 50 * USDT, 1).events == []  # nothing new
    (confirmed,) = report(ex, "t1", 50 * USDT, 3).events
    assert isinstance(confirmed, DepositRecorded)
    assert (confirmed.status, confirmed.credited) == (DepositStatus.CONFIRMED, 50 * USDT)
    assert confirmed.created == pending.created
    assert ex.balances("alice") == {"USDT": ("50.000000", "0.000000")}
    # a crash-and-retry or a second custody worker reports it again: credited once
    assert report(ex, "t1", 50 * USDT, 9).events == []
    assert ex.balances("alice") == {"USDT": ("50.000000", "0.000000")}


def test_a_known_transaction_with_other_facts_is_refused() -> None:
    ex = funded()
    ex.rejects(Code.DEPOSIT_CONFLICT, lambda: report(ex, "seed", 999 * USDT, 3))
    ex.rejects(Code.DEPOSIT_CONFLICT, lambda: report(ex, "seed", 1000 * USDT, 3, user="bob"))


def test_an_onramp_credit_is_a_confirmed_deposit_credited_once_per_reference() -> None:
    ex = Exchange()

    def onramp(reference: str, asset: str = "INR", user: str = "alice") -> Outcome:
        return ex.apply(ReportDeposit(uid(user), asset, ONRAMP_NETWORK, "", 250, reference, 0))

    (credited,) = onramp("r1").events
    assert isinstance(credited, DepositRecorded)
    assert (credited.status, credited.credited) == (DepositStatus.CONFIRMED, 250)
    assert onramp("r1").events == []  # a retry of the same request
    ex.rejects(Code.DEPOSIT_CONFLICT, lambda: onramp("r1", user="bob"))
    ex.rejects(Code.UNKNOWN_ASSET, lambda: onramp("r2", asset="NOPE"))
    assert ex.balances("alice") == {"INR": ("2.50", "0.00")}


def test_deposit_reports_are_checked() -> None:
    ex = Exchange()
    ex.rejects(Code.UNKNOWN_NETWORK, lambda: ex.apply(
        ReportDeposit(uid("alice"), "USDT", "Tron", ALICE_ETH, USDT, "t", 5)))  # fmt: skip
    ex.rejects(Code.INVALID_AMOUNT, lambda: report(ex, "t", 0, 5))
    ex.rejects(Code.INVALID_ORDER, lambda: report(ex, "not a hash!", USDT, 5))
    ex.rejects(Code.INVALID_USER, lambda: report(ex, "t", USDT, 5, user="fees"))


def test_a_withdrawal_locks_amount_and_fee_and_completion_pays_once() -> None:
    ex = funded()
    wid = request(ex, 100 * USDT)
    assert ex.balances("alice") == {"USDT": ("899.000000", "101.000000")}
    assert ex.engine.capital.withdrawals[wid].status == WithdrawalStatus.APPROVED  # small
    (done,) = decide(ex, wid, COMPLETE, "0xpaid").events
    assert isinstance(done, WithdrawalChanged)
    assert (done.status, done.paid, done.fee_paid) == (WithdrawalStatus.CONFIRMED, 100 * USDT, USDT)
    assert ex.balances("alice") == {"USDT": ("899.000000", "0.000000")}
    assert ex.balances("fees") == {"USDT": ("1.000000", "0.000000")}
    assert ex.engine.accounts.supply["USDT"] == 900 * USDT
    # custody retries the completion: nothing moves; a decline now is refused
    assert decide(ex, wid, COMPLETE, "0xpaid").events == []
    ex.rejects(Code.WITHDRAWAL_FINAL, lambda: decide(ex, wid, COMPLETE, "0xother"))
    ex.rejects(Code.WITHDRAWAL_FINAL, lambda: decide(ex, wid, DECLINE))
    assert ex.balances("alice") == {"USDT": ("899.000000", "0.000000")}


def test_a_large_withdrawal_waits_for_an_operator_and_a_decline_releases_it_once() -> None:
    ex = funded(20_000 * USDT)
    wid = request(ex, 15_000 * USDT)
    assert ex.engine.capital.withdrawals[wid].status == WithdrawalStatus.PENDING_APPROVAL
    ex.rejects(Code.NOT_APPROVED, lambda: decide(ex, wid, COMPLETE, "0xearly"))
    (approved,) = decide(ex, wid, APPROVE).events
    assert isinstance(approved, WithdrawalChanged)
    assert approved.status == WithdrawalStatus.APPROVED
    assert decide(ex, wid, APPROVE).events == []
    (declined,) = decide(ex, wid, DECLINE).events  # custody could not send it
    assert isinstance(declined, WithdrawalChanged)
    assert declined.unlocked == 15_001 * USDT
    assert ex.balances("alice") == {"USDT": ("20000.000000", "0.000000")}
    assert decide(ex, wid, DECLINE).events == []  # approve racing decline: the later one is moot
    ex.rejects(Code.WITHDRAWAL_FINAL, lambda: decide(ex, wid, APPROVE))
    ex.rejects(Code.WITHDRAWAL_FINAL, lambda: decide(ex, wid, COMPLETE, "0xlate"))
    ex.rejects(Code.WITHDRAWAL_NOT_FOUND, lambda: decide(ex, wid + 1, APPROVE))


def test_bad_withdrawals_are_refused_and_lock_nothing() -> None:
    ex = funded(40_000 * USDT)

    def asks(
        amount: int, address: str = OUT, asset: str = "USDT", network: str = "Ethereum"
    ) -> Callable[[], Outcome]:
        return lambda: ex.apply(RequestWithdrawal(uid("alice"), asset, network, address, amount, 0))

    ex.rejects(Code.INSUFFICIENT_FUNDS, asks(39_999_500_000))  # + the fee is too much
    ex.rejects(Code.BELOW_MIN_WITHDRAWAL, asks(4 * USDT))
    ex.rejects(Code.ABOVE_MAX_WITHDRAWAL, asks(100_001 * USDT))
    ex.rejects(Code.INVALID_AMOUNT, asks(0))
    ex.rejects(Code.INVALID_AMOUNT, asks(-5 * USDT))
    ex.rejects(Code.INVALID_ADDRESS, asks(10 * USDT, "0x1234"))
    ex.rejects(Code.INVALID_ADDRESS, asks(10 * USDT, "1" + "A" * 33))  # a base58 address
    ex.rejects(Code.UNKNOWN_NETWORK, asks(10 * USDT, network="Tron"))
    ex.rejects(Code.NETWORK_DISABLED, asks(10 * USDT, asset="USDC"))
    assert ex.balances("alice") == {"USDT": ("40000.000000", "0.000000")}


def test_a_memo_is_kept_with_its_withdrawal_and_is_part_of_a_retry_s_facts() -> None:
    ex = funded()

    def ask(memo: str, client_id: int = 9) -> Outcome:
        return ex.apply(
            RequestWithdrawal(uid("alice"), "USDT", "Ethereum", OUT, 10 * USDT, client_id, memo)
        )

    (asked,) = ask("dest tag 1234").events
    assert isinstance(asked, WithdrawalChanged)
    assert asked.memo == ex.engine.capital.withdrawals[asked.withdrawal_id].memo == "dest tag 1234"
    assert ask("dest tag 1234").events == []  # the retry
    ex.rejects(Code.DUPLICATE_CLIENT_ID, lambda: ask("another tag"))
    for bad in ("x" * 65, "tab\there", "caf\u00e9"):
        ex.rejects(Code.INVALID_MEMO, partial(ask, bad, 0))


def test_the_daily_limit_counts_the_last_24_hours_without_declines() -> None:
    ex = funded(60_000 * USDT)
    first = request(ex, 9_000 * USDT)
    for _ in range(4):
        request(ex, 9_000 * USDT)  # 45000 asked
    error = ex.rejects(Code.WITHDRAWAL_LIMIT, lambda: request(ex, 9_000 * USDT))
    assert error.details == {"asset": "USDT", "limit": "50000", "remaining": "5000.000000"}
    decide(ex, first, DECLINE)
    request(ex, 9_000 * USDT)  # the declined one no longer counts
    ex.ts += 86_400_000_000  # a day later
    request(ex, 9_000 * USDT)


def test_a_request_retried_with_its_client_id_is_the_same_withdrawal() -> None:
    ex = funded()

    def ask(amount: int, user: str = "alice", client_id: int = 7) -> Outcome:
        return ex.apply(RequestWithdrawal(uid(user), "USDT", "Ethereum", OUT, amount, client_id))

    (first,) = ask(100 * USDT).events
    assert isinstance(first, WithdrawalChanged)
    assert ask(100 * USDT).events == []  # a retry after a lost answer: nothing locked again
    assert ex.balances("alice") == {"USDT": ("899.000000", "101.000000")}
    error = ex.rejects(Code.DUPLICATE_CLIENT_ID, lambda: ask(200 * USDT))
    assert str(first.withdrawal_id) in error.message
    decide(ex, first.withdrawal_id, DECLINE)
    assert ask(100 * USDT).events == []  # still that withdrawal, declined: no new lock
    assert ex.balances("alice") == {"USDT": ("1000.000000", "0.000000")}
    report(ex, "bobseed", 500 * USDT, 3, user="bob")
    (bobs,) = ask(100 * USDT, user="bob").events  # another user's client id 7 is his own
    assert isinstance(bobs, WithdrawalChanged)
    assert bobs.withdrawal_id != first.withdrawal_id
    (second,) = ask(100 * USDT, client_id=0).events  # no client id: a new one each time
    (third,) = ask(100 * USDT, client_id=0).events
    assert isinstance(second, WithdrawalChanged)
    assert isinstance(third, WithdrawalChanged)
    assert second.withdrawal_id != third.withdrawal_id
