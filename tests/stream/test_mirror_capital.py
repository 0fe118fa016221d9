"""The publisher's balances follow capital moves: deposits credited by custody and every step
of a withdrawal (lock, release, payment and fee), so pushed balances do not drift."""

from __future__ import annotations

from exchange.common.v1 import common_pb2 as cpb
from stream_svc.mirror import FEE_ACCOUNT, Mirror
from stream_svc.redis_keys import user_channel

USER = 7


def deposit(seq: int, credited: str) -> cpb.EngineEvent:
    return cpb.EngineEvent(
        seq=seq,
        deposit_recorded=cpb.DepositRecorded(
            deposit=cpb.Deposit(user_id=USER, asset="USDT"), credited=credited
        ),
    )


def withdrawal(seq: int, **moves: str) -> cpb.EngineEvent:
    return cpb.EngineEvent(
        seq=seq,
        withdrawal_changed=cpb.WithdrawalChanged(
            withdrawal=cpb.Withdrawal(user_id=USER, asset="USDT"), **moves
        ),
    )


def test_deposits_and_withdrawals_move_the_mirrored_balances() -> None:
    mirror = Mirror({"USDT": 6}, {}, {}, seq=0)
    out = mirror.apply([deposit(1, ""), deposit(2, "10")])  # pending, then credited
    assert mirror.balances[(USER, "USDT")] == [10_000_000, 0]
    pushed = out.channels[user_channel(USER)][-1].balance_update
    assert (pushed.available, pushed.locked) == ("10.000000", "0.000000")

    mirror.apply([withdrawal(3, locked="4"), withdrawal(4, unlocked="4")])  # declined
    assert mirror.balances[(USER, "USDT")] == [10_000_000, 0]

    mirror.apply([withdrawal(5, locked="3")])
    assert mirror.balances[(USER, "USDT")] == [7_000_000, 3_000_000]
    out = mirror.apply([withdrawal(6, paid="2.5", fee_paid="0.5")])  # completed
    assert mirror.balances[(USER, "USDT")] == [7_000_000, 0]
    assert mirror.balances[(FEE_ACCOUNT, "USDT")] == [500_000, 0]
    pushed = out.channels[user_channel(USER)][-1].balance_update
    assert (pushed.available, pushed.locked) == ("7.000000", "0.000000")


def test_each_capital_move_rides_its_balance_update_as_a_delta_of_available() -> None:
    """Binance's `balanceUpdate`: a credit (+), a withdrawal's lock (-) and its release (+),
    in order, each at its event's time; a payment from locked moves nothing available."""
    mirror = Mirror({"USDT": 6}, {}, {}, seq=0)
    onramp = cpb.EngineEvent(
        seq=1, ts_us=1_000, deposited=cpb.Deposited(user_id=USER, asset="USDT", amount="1")
    )
    credited = deposit(2, "10")
    credited.ts_us = 2_000
    out = mirror.apply([onramp, credited, deposit(3, "")])
    (pushed,) = out.channels[user_channel(USER)]
    deltas = [(d.delta, d.ts_us) for d in pushed.balance_update.deltas]
    assert deltas == [("1.000000", 1_000), ("10.000000", 2_000)]

    out = mirror.apply([withdrawal(4, locked="4"), withdrawal(5, unlocked="4")])
    (pushed,) = out.channels[user_channel(USER)]
    assert [d.delta for d in pushed.balance_update.deltas] == ["-4.000000", "4.000000"]
    mirror.apply([withdrawal(6, locked="3")])
    out = mirror.apply([withdrawal(7, paid="2.5", fee_paid="0.5")])
    (pushed,) = out.channels[user_channel(USER)]
    assert list(pushed.balance_update.deltas) == []
